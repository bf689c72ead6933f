# The lora-lego service image: `docker build -t lora-lego .`
# Stage 1 builds the shaded jar with Maven; stage 2 runs it on a JRE only.

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /build
# Dependencies first, so a source change does not download them again.
COPY pom.xml .
RUN mvn -B -q dependency:go-offline
# The build needs the Avro schemas (classes are generated from them) and the sources.
COPY schemas schemas
COPY src src
RUN mvn -B -q -DskipTests package

FROM eclipse-temurin:17-jre
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin lora \
    && mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /app
COPY --from=build /build/target/lora-lego.jar /app/lora-lego.jar
USER 10001
# Streams state (RocksDB) and, without --bootstrap-servers, the embedded broker's log.
VOLUME /data
# run --http-port (health, readiness, Prometheus metrics, latest version queries).
EXPOSE 8080
ENTRYPOINT ["java","-jar","/app/lora-lego.jar"]
CMD ["--help"]
