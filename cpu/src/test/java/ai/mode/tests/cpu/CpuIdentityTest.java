package ai.mode.tests.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.cpu.CpuIdentity;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The CPU facts the cpu backend chooses its GEMM provider by, parsed from cpuinfo texts of both vendors. */
class CpuIdentityTest {

    @Test
    void parsesVendorModelAndWidestExtension() {
        CpuIdentity amd = CpuIdentity.parse(List.of(
                "processor\t: 0",
                "vendor_id\t: AuthenticAMD",
                "cpu family\t: 25",
                "model name\t: AMD EPYC 7B13",
                "flags\t\t: fpu sse sse2 avx fma avx2 bmi2",
                "",
                "processor\t: 1",
                "vendor_id\t: GenuineIntel",
                "flags\t\t: avx512f"));
        assertEquals(CpuIdentity.AMD, amd.vendor());
        assertFalse(amd.intel());
        assertEquals("AVX2", amd.isa(), "the first processor's flags, not a later one's");
        assertEquals("AMD EPYC 7B13 (AuthenticAMD, AVX2)", amd.describe());

        CpuIdentity intel = CpuIdentity.parse(List.of(
                "vendor_id : GenuineIntel",
                "model name : Intel(R) Xeon(R) Platinum",
                "flags : sse avx avx2 fma avx512f avx512bw"));
        assertTrue(intel.intel());
        assertEquals("AVX-512", intel.isa());

        CpuIdentity nothing = CpuIdentity.parse(List.of());
        assertEquals("unknown", nothing.vendor());
        assertFalse(nothing.intel());
        assertEquals("unknown ISA", nothing.isa());
    }

    @Test
    void thisMachineIsKnownOnLinux() {
        CpuIdentity here = CpuIdentity.current();
        if (java.nio.file.Files.isReadable(java.nio.file.Path.of("/proc/cpuinfo"))) {
            assertFalse(here.vendor().equals("unknown"), here.describe());
            assertFalse(here.flags().isEmpty(), here.describe());
        }
        assertTrue(here.describe().contains(here.isa()), here.describe());
    }
}
