package ai.mode.tests.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CublasException;
import ai.mode.bindings.CublasLt;
import ai.mode.bindings.CudaErrors;
import ai.mode.bindings.CudaException;
import ai.mode.bindings.Nccl;
import ai.mode.bindings.Nvrtc;
import ai.mode.bindings.NvrtcException;
import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Error code to name mapping of every binding, and the exception message format. The CUDA driver table is
 * checked against the {@code cuda.h} of the local CUDA toolkit (an independent source); the NVRTC, cuBLASLt
 * and NCCL tables against the libraries themselves in {@link NvrtcTest}, {@link CublasLtTest}, {@link NcclTest}.
 */
class ErrorMappingTest {

    @Test
    void cudaNamesOfCommonCodes() {
        assertEquals("CUDA_SUCCESS", CudaErrors.name(0));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", CudaErrors.name(2));
        assertEquals("CUDA_ERROR_NO_DEVICE", CudaErrors.name(100));
        assertEquals("CUDA_ERROR_NO_BINARY_FOR_GPU", CudaErrors.name(209));
        assertEquals("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", CudaErrors.name(222));
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", CudaErrors.name(700));
        assertEquals("CUDA_ERROR_UNKNOWN", CudaErrors.name(999));
        assertEquals("CUresult(12345)", CudaErrors.name(12345));
    }

    @Test
    void cudaTableMatchesTheToolkitHeader() throws IOException {
        Optional<Path> include = Nvrtc.toolkitIncludeDirectory();
        assumeTrue(
                include.isPresent() && Files.isRegularFile(include.get().resolve("cuda.h")),
                "no CUDA toolkit include directory with cuda.h on this machine");
        String header = Files.readString(include.get().resolve("cuda.h"));
        int start = header.indexOf("typedef enum cudaError_enum");
        int end = header.indexOf("} CUresult;", start);
        assertTrue(start >= 0 && end > start, "CUresult enum not found in cuda.h");
        Map<Integer, String> fromHeader = new HashMap<>();
        Matcher m = Pattern.compile("\\b(CUDA_[A-Z0-9_]+)\\s*=\\s*(\\d+)").matcher(header.substring(start, end));
        while (m.find()) fromHeader.put(Integer.parseInt(m.group(2)), m.group(1));
        assertTrue(fromHeader.size() > 80, "parsed only " + fromHeader.size() + " CUresult values");
        for (Map.Entry<Integer, String> e : CudaErrors.all().entrySet()) {
            assertEquals(fromHeader.get(e.getKey()), e.getValue(), "CUresult " + e.getKey());
        }
        for (int code : new int[] {1, 2, 3, 100, 200, 209, 218, 222, 400, 500, 600, 700, 719, 999}) {
            assertEquals(fromHeader.get(code), CudaErrors.name(code), "CUresult " + code + " must be in the table");
        }
    }

    @Test
    void otherLibrariesNames() {
        assertEquals("NVRTC_ERROR_COMPILATION", Nvrtc.errorName(6));
        assertEquals("NVRTC_ERROR_INVALID_OPTION", Nvrtc.errorName(5));
        assertEquals("nvrtcResult(99)", Nvrtc.errorName(99));
        assertEquals("CUBLAS_STATUS_NOT_INITIALIZED", CublasLt.statusName(1));
        assertEquals("CUBLAS_STATUS_NOT_SUPPORTED", CublasLt.statusName(15));
        assertEquals("cublasStatus(2)", CublasLt.statusName(2));
        assertEquals("ncclInvalidArgument", Nccl.resultName(4));
        assertEquals("ncclSystemError", Nccl.resultName(2));
        assertEquals("ncclResult(42)", Nccl.resultName(42));
    }

    @Test
    void messageNamesCallErrorAndArguments() {
        CudaException e = new CudaException("cuMemAlloc(bytes=1073741824)", 2, CudaErrors.name(2), "out of memory");
        assertEquals(
                "cuMemAlloc(bytes=1073741824) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory", e.getMessage());
        assertEquals(2, e.code());
        assertEquals("cuMemAlloc(bytes=1073741824)", e.call());
        // a description equal to the name is not repeated
        CublasException c =
                new CublasException("cublasLtCreate()", 1, CublasLt.statusName(1), "CUBLAS_STATUS_NOT_INITIALIZED");
        assertEquals("cublasLtCreate() failed: CUBLAS_STATUS_NOT_INITIALIZED (1)", c.getMessage());
        NvrtcException n = new NvrtcException(
                "nvrtcCompileProgram(name=k.cu)", 6, Nvrtc.errorName(6), null, "k.cu(3): error: x\n");
        assertEquals(
                "nvrtcCompileProgram(name=k.cu) failed: NVRTC_ERROR_COMPILATION (6): compiler log:\nk.cu(3): error: x",
                n.getMessage());
        assertEquals("k.cu(3): error: x\n", n.log());
        assertNull(new NvrtcException("nvrtcVersion()", 3, Nvrtc.errorName(3), null).log());
    }

    @Test
    void heuristicResultLayoutMatchesTheCStruct() {
        // cublasLtMatmulHeuristicResult_t: uint64_t algo[8]; size_t workspaceSize; cublasStatus_t state;
        // float wavesCount; int reserved[4];  -> 64 + 8 + 4 + 4 + 16 bytes, 8-byte aligned
        assertEquals(96, CublasLt.HEURISTIC_RESULT.byteSize());
        assertEquals(64, CublasLt.HEURISTIC_RESULT.byteOffset(MemoryLayout.PathElement.groupElement("workspaceSize")));
        assertEquals(72, CublasLt.HEURISTIC_RESULT.byteOffset(MemoryLayout.PathElement.groupElement("state")));
        assertEquals(76, CublasLt.HEURISTIC_RESULT.byteOffset(MemoryLayout.PathElement.groupElement("wavesCount")));
        assertEquals(8, CublasLt.HEURISTIC_RESULT.byteAlignment());
    }
}
