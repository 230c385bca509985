// `mode demo`: the main job on the embedded data. Trains the tokenizer and the default base model on the
// general English corpus (or reuses a finished run), evaluates it per domain, then runs any registered
// DemoStage (the MoDE experiment), and prints how long each stage took.
package ai.mode.cli;

import ai.mode.model.data.Split;
import ai.mode.model.io.AtomicFiles;
import ai.mode.model.io.Checkpoint;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.CorpusEvaluation;
import ai.mode.model.train.Pretraining;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "demo",
        mixinStandardHelpOptions = true,
        description = {
            "Run the main job on the embedded data: tokenizer + pretraining of the default base model on the",
            "general English corpus (reused if already finished), evaluation per domain, then any further demo stages.",
            "Outputs go under OUT (default runs/demo)."
        })
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--out", defaultValue = "runs/demo", description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path out;

    @Option(
            names = "--steps",
            defaultValue = "" + PretrainCommand.DEFAULT_STEPS,
            description = "Pretraining steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(
            names = "--eval-windows",
            defaultValue = "128",
            description = "Evaluation windows per split (default: ${DEFAULT-VALUE}).")
    int evalWindows;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        Map<String, Double> seconds = new LinkedHashMap<>();
        long all = System.nanoTime();
        Path baseDir = out.resolve("base");
        Pretraining.Result r;
        DemoStage.Context ctx;
        TrainingOptions t = TrainingOptions.withSteps(steps);
        t.batch = 16;
        t.seq = 128;
        t.accum = 1;
        t.lr = 2e-3;
        t.warmup = -1;
        t.evalEvery = -1;
        t.evalWindows = 64;
        t.checkpointEvery = -1;
        t.keep = 2;
        ResumeOptions resume = new ResumeOptions(); // a demo run continues where an earlier one stopped
        resume.resume = true;
        resume.allowChanged = List.of("all");
        long t0 = System.nanoTime();
        try (Backend be = common.openBackend()) {
            System.out.printf("== stage 1: tokenizer + pretraining (%s backend) -> %s%n", be.name(), baseDir);
            r = PretrainCommand.run(
                    be, baseDir, "english", 4096, null, null, t, resume, common, System.out, System.err);
            seconds.put("pretrain", (System.nanoTime() - t0) / 1e9);
            PretrainCommand.printSummary(r, System.out);

            System.out.println("== stage 2: evaluation of the base model per domain");
            long t1 = System.nanoTime();
            Checkpoint c = SavedModels.resolve(baseDir);
            BpeTokenizer tok = BpeTokenizer.load(c.dir().resolve(Checkpoint.TOKENIZER));
            List<CorpusEvaluation.Row> rows;
            try (LlamaModel model = SavedModels.load(be, c)) {
                rows = CorpusEvaluation.evaluate(
                        model,
                        tok,
                        EvalCommand.DEFAULT_CORPORA,
                        List.of(Split.VALIDATION, Split.TEST),
                        t.seq,
                        t.batch,
                        evalWindows);
            }
            EvalCommand.printTable(rows, System.out);
            seconds.put("evaluate", (System.nanoTime() - t1) / 1e9);
            JsonObject o = new JsonObject();
            o.addProperty("checkpoint", c.dir().toString());
            o.addProperty("val_loss", r.validation().meanLoss());
            o.addProperty("unigram_val_loss", r.unigram().meanLoss());
            o.add("evaluation", CorpusEvaluation.toJson(rows));
            AtomicFiles.writeString(
                    out.resolve("base-eval.json"),
                    new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n");

            ctx = new DemoStage.Context(
                    out,
                    c.dir(),
                    c.dir().resolve(Checkpoint.TOKENIZER),
                    common.backend,
                    common.threads,
                    common.seed,
                    common.quiet,
                    System.out,
                    System.err,
                    seconds);
        }
        List<DemoStage> stages = new ArrayList<>();
        ServiceLoader.load(DemoStage.class).forEach(stages::add);
        stages.sort(Comparator.comparingInt(DemoStage::order));
        for (DemoStage s : stages) {
            System.out.println("== stage: " + s.name());
            long ts = System.nanoTime();
            s.run(ctx);
            seconds.putIfAbsent(s.name(), (System.nanoTime() - ts) / 1e9);
        }
        seconds.put("total", (System.nanoTime() - all) / 1e9);
        System.out.println("== timings");
        seconds.forEach((k, v) -> System.out.printf("%-24s %8.1f s%n", k, v));
        System.out.printf("outputs: %s (loss curve %s)%n", out, baseDir.resolve("loss.png"));
        return 0;
    }
}
