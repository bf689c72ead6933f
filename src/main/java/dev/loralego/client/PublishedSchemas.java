package dev.loralego.client;

import dev.loralego.registry.UnknownSchemaIdException;

import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Decoding that survives a newer service: a record whose schema id this jar does not ship (a service build with an
 * evolved schema) makes the client load the schemas published on the schemas topic
 * ({@link ClientConnection#loadPublishedSchemas}) and decode again, once per unknown id. Long-running readers
 * ({@code watch}) thereby keep decoding after the service is upgraded under them.
 */
final class PublishedSchemas {
    private final ClientConnection connection;
    private final Set<Integer> looked = ConcurrentHashMap.newKeySet();

    PublishedSchemas(ClientConnection connection) {
        this.connection = Objects.requireNonNull(connection, "connection");
    }

    /** {@code decoder}'s result; on an unknown schema id not looked up before, loads the published schemas and retries. */
    <T> T decode(Supplier<T> decoder) {
        try {
            return decoder.get();
        } catch (RuntimeException e) {
            Integer id = unknownId(e);
            if (id == null || !looked.add(id)) throw e;
            connection.loadPublishedSchemas();
            return decoder.get();
        }
    }

    private static Integer unknownId(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof UnknownSchemaIdException u) return u.id();
        }
        return null;
    }
}
