package dev.loralego.peft;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The JSON conventions of {@code adapter_config.json} in this package: strict parsing (duplicate keys are an
 * error), insertion-ordered objects, and PEFT-like output (two-space indent, {@code "key": value}), written
 * atomically through a temporary file.
 */
final class PeftJson {

    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();


    private PeftJson() {
    }

    /**
     * Pretty JSON as Python's {@code json.dumps(obj, indent=2)} writes it: 2-space indent, {@code ": "} between
     * key and value, LF line ends, empty containers as <code>{}</code> and {@code []}, no trailing newline.
     */
    static String pretty(JsonNode node) {
        try {
            return MAPPER.writer(new PythonStylePrinter()).writeValueAsString(node);
        } catch (IOException e) {
            throw new IllegalStateException("cannot serialise JSON", e);
        }
    }

    /** Jackson's default printer, but without the space it puts inside empty objects and arrays. */
    private static final class PythonStylePrinter extends DefaultPrettyPrinter {
        private static final long serialVersionUID = 1L;

        PythonStylePrinter() {
            super(Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER));
            indentObjectsWith(new DefaultIndenter("  ", "\n"));
            indentArraysWith(new DefaultIndenter("  ", "\n"));
        }

        @Override
        public DefaultPrettyPrinter createInstance() {
            return new PythonStylePrinter();
        }

        @Override
        public void writeEndObject(JsonGenerator g, int nrOfEntries) throws IOException {
            if (nrOfEntries == 0) {
                _nesting--;
                g.writeRaw('}');
            } else {
                super.writeEndObject(g, nrOfEntries);
            }
        }

        @Override
        public void writeEndArray(JsonGenerator g, int nrOfValues) throws IOException {
            if (nrOfValues == 0) {
                _nesting--;
                g.writeRaw(']');
            } else {
                super.writeEndArray(g, nrOfValues);
            }
        }
    }

    /** Writes {@code text} (UTF-8) atomically ({@link AtomicFiles#write}). */
    static void writeAtomically(Path file, String text) throws IOException {
        AtomicFiles.write(file, text.getBytes(StandardCharsets.UTF_8));
    }
}
