package ai.mode.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.InputStream;
import java.lang.module.ModuleDescriptor;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The API module's descriptor as compiled: named {@code ai.mode.runtime}, exporting only the API package, requiring
 * nothing beyond {@code java.base}, and using the provider service through which backends are found.
 */
class ModuleDescriptorTest {
    @Test
    void exportsOnlyTheApiAndUsesTheProviderService() throws Exception {
        URI classes = BackendSpec.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI();
        ModuleDescriptor d;
        try (InputStream in = Files.newInputStream(Path.of(classes).resolve("module-info.class"))) {
            d = ModuleDescriptor.read(in);
        }
        assertEquals("ai.mode.runtime", d.name());
        assertEquals(
                Set.of("ai.mode.runtime"),
                d.exports().stream().map(ModuleDescriptor.Exports::source).collect(Collectors.toSet()));
        assertEquals(
                Set.of("java.base"),
                d.requires().stream().map(ModuleDescriptor.Requires::name).collect(Collectors.toSet()));
        assertEquals(Set.of(BackendProvider.class.getName()), d.uses());
        assertEquals(d.packages(), Set.of("ai.mode.runtime"), "no package beyond the exported API");
    }
}
