/**
 * Kafka infrastructure of the service: the in-JVM single-node KRaft broker used as the embedded default
 * and by the integration tests ({@link dev.loralego.kafka.EmbeddedKafkaBroker}, the only user of Kafka's
 * internal server API), the topic catalogue ({@link dev.loralego.kafka.TopicNames}) and topic creation
 * with the settings large tensor records need ({@link dev.loralego.kafka.TopicAdmin}).
 */
package dev.loralego.kafka;
