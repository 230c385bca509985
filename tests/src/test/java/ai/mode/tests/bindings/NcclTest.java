package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.Nccl;
import ai.mode.bindings.NcclException;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * NCCL through FFM, for real (no GPU needed): version, unique ids, the result-code table checked
 * against the library's own error strings, a refused call's message and the split entry point. Skips when NCCL is absent (build with -Pcuda-libs).
 */
class NcclTest {
    private static Nccl nccl;

    @BeforeEach
    void load() {
        Optional<String> reason = Nccl.unavailableReason();
        assumeTrue(reason.isEmpty(), () -> "NCCL not available: " + reason.orElse(""));
        nccl = Nccl.get();
    }

    @Test
    void version() {
        int v = nccl.version();
        assertEquals(2, v / 10000, "NCCL 2.x, got code " + v);
        assertTrue(v / 100 % 100 >= 18, "NCCL >= 2.18 (bf16, ncclGetLastError): " + Nccl.versionString(v));
        assertEquals("2.23.4", Nccl.versionString(22304));
    }

    @Test
    void splitIsBoundAndAFailedCallIsReportedWithNcclsLastError() {
        assertTrue(nccl.canSplit(), "ncclCommSplit is exported from NCCL 2.18 on: " + nccl.origin());
        // rank 5 of 2 is refused before any device is touched; the error path reads ncclGetLastError
        NcclException e = assertThrows(NcclException.class, () -> nccl.initRank(2, nccl.uniqueId(), 5));
        assertTrue(e.getMessage().startsWith("ncclCommInitRank(nranks=2, rank=5) failed: nccl"), e.getMessage());
    }

    @Test
    void uniqueIdsAreFreshAndRoundTrip() {
        Nccl.UniqueId a = nccl.uniqueId();
        Nccl.UniqueId b = nccl.uniqueId();
        assertEquals(Nccl.UNIQUE_ID_BYTES, a.bytes().length);
        boolean allZero = true;
        for (byte x : a.bytes()) allZero &= x == 0;
        assertFalse(allZero, "the id carries the bootstrap address");
        assertNotEquals(a, b, "each call makes a new id");
        assertEquals(a, Nccl.UniqueId.fromHex(a.toHex()));
        assertThrows(IllegalArgumentException.class, () -> new Nccl.UniqueId(new byte[12]));
    }

    @Test
    void resultNamesAgreeWithLibraryStrings() {
        Map<Integer, String> keyword = Map.of(
                0,
                "no error",
                1,
                "cuda",
                2,
                "system",
                3,
                "internal",
                4,
                "invalid argument",
                5,
                "invalid usage",
                6,
                "remote",
                7,
                "in progress");
        for (Map.Entry<Integer, String> e : keyword.entrySet()) {
            String lib = nccl.errorString(e.getKey()).toLowerCase();
            assertTrue(
                    lib.contains(e.getValue()),
                    "ncclResult " + e.getKey() + " (" + Nccl.resultName(e.getKey()) + ") is described by NCCL as '"
                            + lib + "'");
        }
        assertEquals(8, Nccl.resultNames().size());
    }
}
