package dev.loralego.peft;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.List;

/** The real PEFT adapters under {@code src/test/resources/real-adapters} (see the README there). */
final class Fixtures {
    static final List<String> NAMES = List.of("gpt2-tigrinya-causal", "gpt2-imdb-seqcls-cattn", "gpt2-seqcls-cattn-cproj");

    private Fixtures() {
    }

    static Path dir(String name) {
        URL url = Fixtures.class.getResource("/real-adapters/" + name);
        if (url == null) {
            throw new IllegalStateException("fixture " + name + " missing from the test classpath");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
