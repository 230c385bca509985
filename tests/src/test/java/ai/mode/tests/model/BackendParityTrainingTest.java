// End to end on two backends: the same tiny model trained for a few steps on cpu and on emu (the CUDA
// kernels under the CPU emulator) gives the same losses and parameters within float32 tolerance.
package ai.mode.tests.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.mode.model.LlamaConfig;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.nn.Parameter;
import ai.mode.model.train.AdamW;
import ai.mode.model.train.LrSchedule;
import ai.mode.model.train.ParameterSelection;
import ai.mode.model.train.RandomWindowStream;
import ai.mode.model.train.Trainer;
import ai.mode.runtime.Backend;
import ai.mode.runtime.BackendProvider;
import ai.mode.runtime.Backends;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class BackendParityTrainingTest {

    private record Run(List<Double> losses, Map<String, float[]> params) {}

    private static Run train(String backend) {
        LlamaConfig cfg = new LlamaConfig(40, 32, 2, 4, 2, 48, 16, 10000f, 1e-5f, false);
        SplittableRandom r = new SplittableRandom(3);
        int[] corpus = new int[2000];
        for (int i = 0; i < corpus.length; i++) corpus[i] = r.nextInt(8) == 0 ? r.nextInt(40) : (i * 5) % 17 + 2;
        List<Double> losses = new ArrayList<>();
        Map<String, float[]> params = new LinkedHashMap<>();
        try (Backend be = Backends.create(backend, 2);
                LlamaModel m = LlamaModel.create(be, cfg).initialize(9)) {
            ParameterSelection.all().apply(m.parameters());
            Trainer.Options opt =
                    new Trainer.Options(4, 4, 12, 2, new LrSchedule(3e-3, 1, 4, 0.1), AdamW.Config.defaults(), 0, 0, 9);
            new Trainer(m, new RandomWindowStream(corpus, 5), null, opt, null, List.of(new Trainer.Listener() {
                        @Override
                        public void onStep(Trainer.StepMetrics s) {
                            losses.add(s.loss());
                        }
                    }))
                    .run();
            for (Parameter p : m.parameters()) params.put(p.name(), be.toHostFloats(p.value()));
        }
        return new Run(losses, params);
    }

    @Test
    void cpuAndEmuTrainAlike() {
        BackendProvider emu = Backends.providers().stream()
                .filter(p -> p.name().equals("emu"))
                .findFirst()
                .orElse(null);
        assumeTrue(
                emu != null && emu.available(),
                () -> "emu backend not available: " + (emu == null ? "no provider" : emu.unavailableReason()));
        Run cpu = train("cpu"), em = train("emu");
        assertEquals(4, cpu.losses().size());
        for (int i = 0; i < 4; i++)
            assertEquals(cpu.losses().get(i), em.losses().get(i), 2e-4, "loss at step " + (i + 1));
        assertEquals(true, cpu.losses().get(3) < cpu.losses().get(0), "loss should fall: " + cpu.losses());
        for (Map.Entry<String, float[]> e : cpu.params().entrySet()) {
            float[] a = e.getValue(), b = em.params().get(e.getKey());
            double maxDiff = 0;
            for (int i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
            // 4 Adam steps of lr <= 3e-3: rounding differences stay far below one update
            assertEquals(0, maxDiff, 3e-4, e.getKey());
        }
    }
}
