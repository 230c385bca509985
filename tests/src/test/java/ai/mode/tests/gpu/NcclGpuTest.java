package ai.mode.tests.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.bindings.CudaContext;
import ai.mode.bindings.CudaDriver;
import ai.mode.bindings.CudaStream;
import ai.mode.bindings.Nccl;
import ai.mode.tests.reference.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * NCCL collectives on every visible GPU of this machine (one communicator per device, one process, driven
 * from one thread inside group calls): all-reduce, all-gather, reduce-scatter and broadcast against host
 * references. With one GPU the communicator has one rank and each collective is a copy.
 */
@Tag("gpu")
class NcclGpuTest {

    @Test
    void collectivesOnAllLocalDevices() {
        CudaDriver driver = Gpu.requireGpu();
        assumeTrue(
                Nccl.unavailableReason().isEmpty(),
                () -> "NCCL not available: " + Nccl.unavailableReason().orElse(""));
        Nccl nccl = Nccl.get();
        int ranks = Math.min(driver.deviceCount(), 8);
        int n = 4096;
        int[] devices = new int[ranks];
        for (int r = 0; r < ranks; r++) devices[r] = r;
        CudaContext[] ctx = new CudaContext[ranks];
        CudaStream[] stream = new CudaStream[ranks];
        long[] send = new long[ranks];
        long[] recv = new long[ranks];
        float[][] data = new float[ranks][];
        Nccl.Comm[] comms = nccl.initAll(devices);
        try (Arena arena = Arena.ofConfined()) {
            for (int r = 0; r < ranks; r++) {
                ctx[r] = driver.retainPrimaryContext(r);
                ctx[r].makeCurrent();
                stream[r] = driver.streamCreate(0);
                send[r] = driver.memAlloc(4L * n * ranks);
                recv[r] = driver.memAlloc(4L * n * ranks);
                data[r] = TestData.normal(100 + r, n * ranks);
                driver.memcpyHtoD(send[r], arena.allocateFrom(ValueLayout.JAVA_FLOAT, data[r]), 4L * n * ranks);
                assertEquals(r, comms[r].rank());
                assertEquals(ranks, comms[r].size());
            }
            // all-reduce (sum) of the first n elements
            nccl.groupStart();
            for (int r = 0; r < ranks; r++) {
                ctx[r].makeCurrent();
                comms[r].allReduce(send[r], recv[r], n, Nccl.FLOAT32, Nccl.SUM, stream[r]);
            }
            nccl.groupEnd();
            for (int r = 0; r < ranks; r++) {
                float[] got = download(driver, ctx[r], stream[r], recv[r], n, arena);
                for (int i = 0; i < n; i++) {
                    double s = 0;
                    for (int q = 0; q < ranks; q++) s += data[q][i];
                    assertEquals(s, got[i], 1e-5 * ranks, "all-reduce rank " + r + " element " + i);
                }
            }
            // all-gather: each rank contributes its first n elements
            nccl.groupStart();
            for (int r = 0; r < ranks; r++) {
                ctx[r].makeCurrent();
                comms[r].allGather(send[r], recv[r], n, Nccl.FLOAT32, stream[r]);
            }
            nccl.groupEnd();
            for (int r = 0; r < ranks; r++) {
                float[] got = download(driver, ctx[r], stream[r], recv[r], n * ranks, arena);
                for (int q = 0; q < ranks; q++) {
                    for (int i = 0; i < n; i++) assertEquals(data[q][i], got[q * n + i], "all-gather block " + q);
                }
            }
            // reduce-scatter: rank r gets the sum of block r
            nccl.groupStart();
            for (int r = 0; r < ranks; r++) {
                ctx[r].makeCurrent();
                comms[r].reduceScatter(send[r], recv[r], n, Nccl.FLOAT32, Nccl.SUM, stream[r]);
            }
            nccl.groupEnd();
            for (int r = 0; r < ranks; r++) {
                float[] got = download(driver, ctx[r], stream[r], recv[r], n, arena);
                for (int i = 0; i < n; i++) {
                    double s = 0;
                    for (int q = 0; q < ranks; q++) s += data[q][r * n + i];
                    assertEquals(s, got[i], 1e-5 * ranks, "reduce-scatter rank " + r);
                }
            }
            // broadcast from the last rank
            int root = ranks - 1;
            nccl.groupStart();
            for (int r = 0; r < ranks; r++) {
                ctx[r].makeCurrent();
                comms[r].broadcast(send[r], recv[r], n, Nccl.FLOAT32, root, stream[r]);
            }
            nccl.groupEnd();
            for (int r = 0; r < ranks; r++) {
                float[] got = download(driver, ctx[r], stream[r], recv[r], n, arena);
                for (int i = 0; i < n; i++) assertEquals(data[root][i], got[i], "broadcast to rank " + r);
            }
        } finally {
            for (int r = 0; r < ranks; r++) {
                if (ctx[r] == null) continue;
                ctx[r].makeCurrent();
                comms[r].close();
                if (send[r] != 0) driver.memFree(send[r]);
                if (recv[r] != 0) driver.memFree(recv[r]);
                if (stream[r] != null) stream[r].close();
                ctx[r].close();
            }
        }
    }

    private static float[] download(
            CudaDriver driver, CudaContext ctx, CudaStream stream, long ptr, int n, Arena arena) {
        ctx.makeCurrent();
        stream.synchronize();
        MemorySegment host = arena.allocate(4L * n);
        driver.memcpyDtoH(host, ptr, 4L * n);
        return host.toArray(ValueLayout.JAVA_FLOAT);
    }
}
