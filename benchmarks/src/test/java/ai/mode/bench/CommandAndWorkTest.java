// `mode bench` argument validation (before any benchmark runs) and the JMH score-to-throughput mapping.
package ai.mode.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.mode.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class CommandAndWorkTest {

    private static String[] run(String... args) {
        CommandLine cl = Main.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new String[] {String.valueOf(code), out.toString(), err.toString()};
    }

    @Test
    void benchIsRegisteredAndRejectsUnknownSectionsAndArguments() {
        String[] r = run("bench", "--only", "sgemm,nope");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("unknown section 'nope'"), r[2]);
        r = run("bench", "--frobnicate");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("unknown arguments [--frobnicate]"), r[2]);
        r = run("bench", "--threads", "0");
        assertTrue(r[2].contains("--threads must be >= 1"), r[2]);
    }

    @Test
    void jmhScoresBecomeSecondsAndWork() {
        assertEquals(2e-6, JmhWork.secondsPerOp(2, "us/op").orElseThrow(), 1e-18);
        assertEquals(3e-9, JmhWork.secondsPerOp(3, "ns/op").orElseThrow(), 1e-21);
        assertTrue(JmhWork.secondsPerOp(3, "ops/s").isEmpty());
        Map<String, String> p = Map.of("shape", "4x5x6:NT");
        JmhWork.Work w = JmhWork.of("ai.mode.bench.jmh.GemmBench.sgemm", p::get);
        assertEquals(2.0 * 4 * 5 * 6, w.amount());
        assertEquals(JmhWork.Unit.FLOP, w.unit());
        assertEquals(
                JmhWork.Unit.BYTE,
                JmhWork.of("ai.mode.bench.jmh.OpsBench.run", Map.of("op", "adamw")::get)
                        .unit());
        assertEquals(
                JmhWork.Unit.CALL,
                JmhWork.of("ai.mode.bench.jmh.NativeCallBench.sdot16Jni", k -> null)
                        .unit());
        assertNull(JmhWork.of("x.y.Unknown.run", k -> null));
    }

    @Test
    void fmaProbeLoopComputesTheScalarRecurrence() {
        float expected = 0;
        for (int chain = 0; chain < 12; chain++) {
            float a = 1f + chain;
            for (int i = 0; i < 3; i++) a = Math.fma(a, 0.999_999f, 1e-6f);
            expected += a * PeakProbes.lanes();
        }
        assertEquals(expected, PeakProbes.fmaLoop(3, 1f), 1e-3);
        assertEquals(3L * 12 * PeakProbes.lanes() * 2, PeakProbes.fmaLoopFlops(3));
    }
}
