// `mode eval-mode`: test accuracy, loss, parameter counts and per-domain gate weights of a MoDE model given by
// its backbone and an expert file (routing can be changed at evaluation time, e.g. a dense-trained gate run top-1).
package ai.mode.cli;

import ai.mode.model.io.Checkpoint;
import ai.mode.model.mode.Composer;
import ai.mode.model.mode.ExpertFile;
import ai.mode.model.mode.ModeModel;
import ai.mode.model.mode.ModeTraining;
import ai.mode.model.mode.Routing;
import ai.mode.model.nn.LlamaModel;
import ai.mode.model.tokenizer.BpeTokenizer;
import ai.mode.model.train.SavedModels;
import ai.mode.runtime.Backend;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "eval-mode",
        mixinStandardHelpOptions = true,
        description =
                "Evaluate a MoDE model (backbone + expert file): test accuracy and loss per domain, parameter counts, mean gate weights.")
public final class EvalModeCommand implements Callable<Integer> {
    @Mixin
    ModeCliOptions.Saved saved;

    @Mixin
    ModeCliOptions.ExpertChoice choice;

    @Option(
            names = "--eval",
            split = ",",
            description =
                    "Domains to evaluate (default: the experts' domains that are corpora, and english-retention).")
    List<String> eval;

    @Option(names = "--seq", defaultValue = "128", description = "Tokens per window (default: ${DEFAULT-VALUE}).")
    int seq;

    @Option(names = "--batch", defaultValue = "8", description = "Windows per batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(
            names = "--eval-windows",
            defaultValue = "64",
            description = "Test windows per domain (default: ${DEFAULT-VALUE}).")
    int windows;

    @Mixin
    CommonOptions common;

    @Override
    public Integer call() throws Exception {
        boolean optOut = choice.given();
        ExpertFile f = saved.expertFile();
        List<String> trained =
                f.config().domains().stream().filter(d -> !d.equals("mixed")).toList();
        Checkpoint c = SavedModels.resolve(saved.checkpoint);
        BpeTokenizer tok = ModeCliSupport.tokenizer(c);
        var data = ModeCliSupport.domains(ModeCliSupport.evalDomains(eval, trained), tok);
        Routing r = saved.routing(f);
        try (Backend be = common.openBackend();
                LlamaModel base = SavedModels.load(be, c);
                ModeModel m = Composer.load(base, f, r)) {
            if (optOut) m.useExperts(choice.chosen(m));
            System.out.printf(
                    "MoDE model: %s over %s, experts %s, routing %s%n",
                    f.source(), c.dir(), f.config().domains(), r);
            if (!m.activeExperts().equals(f.config().domains()))
                System.out.printf("experts used: %s (gates renormalised over them)%n", m.activeExperts());
            ModeTraining.Evaluation e = ModeTraining.evaluate(m, data, seq, batch, windows);
            ModeCliSupport.printEvaluation(System.out, e, ModeTraining.count(m, base.parameters(), 0));
        }
        return 0;
    }
}
