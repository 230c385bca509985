package ai.mode.tests.emu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.runtime.device.DeviceException;
import ai.mode.runtime.device.KernelArgs;
import ai.mode.runtime.device.KernelFunction;
import ai.mode.runtime.emu.EmuDevice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * CUDA semantics of the emulator's default (fiber) engine, on test-only kernels
 * ({@code kernels/src/test/cuda/emu_checks.cu}): thread and block indices (x fastest), shuffles with
 * offsets and segment widths, votes with exited lanes, {@code __syncthreads_count}, atomics, shared memory
 * poisoned before every block, a missing {@code __syncthreads} exposed as poisoned (NaN) results, a
 * divergent barrier reported as a failed launch (not a hang), and launch-limit errors.
 */
class EmulatorSemanticsTest {
    private static EmuDevice device;

    @BeforeAll
    static void build() {
        device = EmuDevice.open(EmuBuilds.checksLibrary());
    }

    /** Launches {@code name} with {@code args} built in {@code arena}. */
    private static void launch(String name, int[] grid, int[] block, KernelArgs args) {
        KernelFunction f = device.function(name);
        device.verifyParameters(f, args.signature());
        device.launch(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, args.build());
    }

    private static MemorySegment ints(Arena arena, int n) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_INT, n);
        s.fill((byte) 0);
        return s;
    }

    @Test
    void indicesRunXFastest() {
        int[] grid = {2, 2, 3}, block = {4, 3, 2};
        int threads = 24, blocks = 12;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, blocks * threads * 6);
            launch("emu_test_indices", grid, block, new KernelArgs(arena, 1).ptr(out.address()));
            int[] got = out.toArray(ValueLayout.JAVA_INT);
            for (int bz = 0, i = 0; bz < 3; bz++)
                for (int by = 0; by < 2; by++)
                    for (int bx = 0; bx < 2; bx++)
                        for (int tz = 0; tz < 2; tz++)
                            for (int ty = 0; ty < 3; ty++)
                                for (int tx = 0; tx < 4; tx++, i++) {
                                    assertArrayEquals(
                                            new int[] {tx, ty, tz, bx, by, bz},
                                            java.util.Arrays.copyOfRange(got, i * 6, i * 6 + 6),
                                            "thread " + i);
                                }
        }
    }

    @Test
    void shufflesFollowCudaRules() {
        int n = 64;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, n * 8);
            launch(
                    "emu_test_shuffles",
                    new int[] {1, 1, 1},
                    new int[] {n, 1, 1},
                    new KernelArgs(arena, 1).ptr(out.address()));
            int[] got = out.toArray(ValueLayout.JAVA_INT);
            for (int t = 0; t < n; t++) {
                int lane = t % 32, warp = t - lane;
                int[] expect = {
                    10 * (warp + (lane ^ 5)),
                    lane + 3 < 32 ? 10 * (t + 3) : 10 * t,
                    lane >= 2 ? 10 * (t - 2) : 10 * t,
                    10 * (warp + 7),
                    10 * (warp + (lane ^ 4)),
                    (lane % 16) + 3 < 16 ? 10 * (t + 3) : 10 * t,
                    10 * (warp + (lane / 16) * 16 + 3),
                    Float.floatToRawIntBits(10 * (warp + (lane ^ 1)) + 0.5f),
                };
                assertArrayEquals(expect, java.util.Arrays.copyOfRange(got, t * 8, t * 8 + 8), "thread " + t);
            }
        }
    }

    @Test
    void votesIgnoreExitedLanes() {
        int n = 64, live = 45;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, n * 4);
            launch(
                    "emu_test_votes",
                    new int[] {1, 1, 1},
                    new int[] {n, 1, 1},
                    new KernelArgs(arena, 2).ptr(out.address()).i32(live));
            int[] got = out.toArray(ValueLayout.JAVA_INT);
            int count = 0;
            for (int t = 0; t < live; t++) if (t % 3 == 0) count++;
            for (int t = 0; t < live; t++) {
                int warp = t / 32 * 32, ballot = 0;
                for (int l = 0; l < 32 && warp + l < live; l++) if ((warp + l) % 3 == 0) ballot |= 1 << l;
                int any = warp == 32 ? 1 : 0;
                assertArrayEquals(
                        new int[] {ballot, any, 1, count},
                        java.util.Arrays.copyOfRange(got, t * 4, t * 4 + 4),
                        "thread " + t);
            }
            for (int t = live; t < n; t++) assertEquals(0, got[t * 4 + 3], "exited thread " + t + " wrote nothing");
        }
    }

    @Test
    void atomicsAreExact() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment counter = ints(arena, 2);
            MemorySegment sum = arena.allocate(ValueLayout.JAVA_LONG);
            sum.set(ValueLayout.JAVA_LONG, 0, 0);
            launch(
                    "emu_test_atomics",
                    new int[] {5, 1, 1},
                    new int[] {96, 1, 1},
                    new KernelArgs(arena, 2).ptr(counter.address()).ptr(sum.address()));
            assertEquals(480, counter.get(ValueLayout.JAVA_INT, 0));
            assertEquals(95, counter.get(ValueLayout.JAVA_INT, 4));
            assertEquals(479L * 480 / 2, sum.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    @Test
    void sharedMemoryIsPoisonedBeforeEveryBlock() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, 3 * 64);
            launch(
                    "emu_test_shared_poison",
                    new int[] {3, 1, 1},
                    new int[] {64, 1, 1},
                    new KernelArgs(arena, 1).ptr(out.address()));
            for (int v : out.toArray(ValueLayout.JAVA_INT))
                assertEquals(0xFFFFFFFF, v, "uninitialised shared memory reads the poison");
        }
    }

    @Test
    void missingSyncthreadsShowsUpAsPoison() {
        int n = 64, blocks = 2;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(ValueLayout.JAVA_FLOAT, n * blocks),
                    out = arena.allocate(ValueLayout.JAVA_FLOAT, n * blocks);
            for (int i = 0; i < n * blocks; i++) in.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            launch(
                    "emu_test_rotate",
                    new int[] {blocks, 1, 1},
                    new int[] {n, 1, 1},
                    new KernelArgs(arena, 3)
                            .ptr(in.address())
                            .ptr(out.address())
                            .i32(1));
            for (int b = 0; b < blocks; b++) {
                for (int t = 0; t < n; t++) {
                    assertEquals(
                            b * n + (t + 1) % n,
                            out.getAtIndex(ValueLayout.JAVA_FLOAT, b * n + t),
                            "with __syncthreads");
                }
            }
            launch(
                    "emu_test_rotate",
                    new int[] {blocks, 1, 1},
                    new int[] {n, 1, 1},
                    new KernelArgs(arena, 3)
                            .ptr(in.address())
                            .ptr(out.address())
                            .i32(0));
            int poisoned = 0;
            for (int i = 0; i < n * blocks; i++) if (Float.isNaN(out.getAtIndex(ValueLayout.JAVA_FLOAT, i))) poisoned++;
            assertTrue(
                    poisoned >= blocks * (n - 1),
                    "without __syncthreads reads of not-yet-written shared memory give NaN: " + poisoned);
        }
    }

    @Test
    void divergentBarrierFailsTheLaunchInsteadOfHanging() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, 32);
            DeviceException e = assertThrows(
                    DeviceException.class,
                    () -> launch(
                            "emu_test_divergent_barrier",
                            new int[] {1, 1, 1},
                            new int[] {32, 1, 1},
                            new KernelArgs(arena, 1).ptr(out.address())));
            assertTrue(
                    e.getMessage().contains("EMU_ERROR_LAUNCH_FAILED")
                            && e.getMessage().contains("deadlocked"),
                    e.getMessage());
            // the emulator recovers: the next launch runs normally
            MemorySegment counter = ints(arena, 2);
            MemorySegment sum = arena.allocate(ValueLayout.JAVA_LONG);
            launch(
                    "emu_test_atomics",
                    new int[] {1, 1, 1},
                    new int[] {32, 1, 1},
                    new KernelArgs(arena, 2).ptr(counter.address()).ptr(sum.address()));
            assertEquals(32, counter.get(ValueLayout.JAVA_INT, 0));
        }
    }

    @Test
    void launchLimitsAndUnknownKernelsAreErrors() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = ints(arena, 8);
            DeviceException big = assertThrows(
                    DeviceException.class,
                    () -> launch(
                            "emu_test_indices",
                            new int[] {1, 1, 1},
                            new int[] {1025, 1, 1},
                            new KernelArgs(arena, 1).ptr(out.address())));
            assertTrue(big.getMessage().contains("exceeds the CUDA limits"), big.getMessage());
            DeviceException missing = assertThrows(DeviceException.class, () -> device.function("no_such_kernel"));
            assertTrue(missing.getMessage().contains("EMU_ERROR_NOT_FOUND"), missing.getMessage());
            DeviceException wrongArgs = assertThrows(
                    DeviceException.class,
                    () -> launch(
                            "emu_test_votes",
                            new int[] {1, 1, 1},
                            new int[] {32, 1, 1},
                            new KernelArgs(arena, 2).ptr(out.address()).f32(1f)));
            assertTrue(wrongArgs.getMessage().contains("takes parameters (pi)"), wrongArgs.getMessage());
        }
    }
}
