package dev.loralego.peft;

import java.io.IOException;

/**
 * A safetensors file that breaks the format: truncated, oversized or malformed header, overlapping or gapped
 * data offsets, duplicate tensor names, unknown dtype, or a shape that disagrees with its byte count. The
 * message names the file and the offending tensor or field.
 */
public final class SafetensorsFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /** @param message what is wrong, naming the file and the tensor or field */
    public SafetensorsFormatException(String message) {
        super(message);
    }

    /** @param message what is wrong; {@code cause} the underlying parser error */
    public SafetensorsFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
