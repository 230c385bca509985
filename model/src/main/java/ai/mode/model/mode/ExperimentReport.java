package ai.mode.model.mode;

import ai.mode.model.io.AtomicFiles;
import ai.mode.model.train.ChartWriter;
import ai.mode.runtime.LossStats;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The experiment's outputs: the table in the paper's form (method, params, Math, Code, English, Avg) as Markdown and
 * JSON, test losses, every domain's accuracy with each expert removed (domain opt-out), routers built without joint
 * training against the trained gate, per-domain gate weights, what each method trained on, stage timings, and PNG plots (training-loss
 * curves, gate weights per domain) drawn by the registered {@link ai.mode.model.train.ChartWriter}. Writers for
 * {@link ModeExperiment.Report}.
 */
public final class ExperimentReport {
    /** File names inside the run folder. */
    public static final String MARKDOWN = "results.md", JSON = "results.json", LOSS_PNG = "loss-curves.png";

    private ExperimentReport() {}

    /** Column title of a domain: Math, Code, English (retention), or the name capitalised. */
    public static String title(String domain) {
        return switch (domain) {
            case "english-retention" -> "English";
            case "math" -> "Math";
            case "code" -> "Code";
            default -> domain.isEmpty() ? domain : Character.toUpperCase(domain.charAt(0)) + domain.substring(1);
        };
    }

    /** 4.72M, 812.3K, 1.58B. */
    public static String compact(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.3fB", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.2fM", n / 1e6);
        if (n >= 1_000L) return String.format(Locale.ROOT, "%.1fK", n / 1e3);
        return Long.toString(n);
    }

    /** The paper-form table (accuracy in %) as Markdown rows. */
    public static String accuracyTable(ModeExperiment.Report r) {
        StringBuilder b = new StringBuilder("| method | params | added | trainable |");
        for (String d : r.evalDomains()) b.append(' ').append(title(d)).append(" |");
        b.append(" Avg |\n|---|---:|---:|---:|");
        b.append("---:|".repeat(r.evalDomains().size() + 1)).append('\n');
        for (MethodResult m : r.results()) {
            b.append("| ")
                    .append(m.label())
                    .append(" | ")
                    .append(compact(m.params().total()))
                    .append(" | ")
                    .append(compact(m.params().added()))
                    .append(" | ")
                    .append(compact(m.params().trainable()))
                    .append(" |");
            for (String d : r.evalDomains()) b.append(String.format(Locale.ROOT, " %.2f |", 100 * m.accuracy(d)));
            b.append(String.format(Locale.ROOT, " %.2f |%n", 100 * m.meanAccuracy(r.evalDomains())));
        }
        return b.toString();
    }

    /** Test loss (nats/token) per domain. */
    public static String lossTable(ModeExperiment.Report r) {
        StringBuilder b = new StringBuilder("| method |");
        for (String d : r.evalDomains()) b.append(' ').append(title(d)).append(" |");
        b.append(" Avg |\n|---|")
                .append("---:|".repeat(r.evalDomains().size() + 1))
                .append('\n');
        for (MethodResult m : r.results()) {
            b.append("| ").append(m.label()).append(" |");
            for (String d : r.evalDomains()) b.append(String.format(Locale.ROOT, " %.3f |", m.loss(d)));
            b.append(String.format(Locale.ROOT, " %.3f |%n", m.meanLoss(r.evalDomains())));
        }
        return b.toString();
    }

    /**
     * Domain opt-out: for every composed MoDE method, the test accuracy (%) on every domain with all its experts
     * ("none" removed) and with each expert removed in turn (gates renormalised over the rest). Empty when no
     * method was evaluated that way.
     */
    public static String optOutTable(ModeExperiment.Report r) {
        if (r.optOut().isEmpty()) return "";
        StringBuilder b = new StringBuilder("| method | expert removed |");
        for (String d : r.evalDomains()) b.append(' ').append(title(d)).append(" |");
        b.append(" Avg |\n|---|---|")
                .append("---:|".repeat(r.evalDomains().size() + 1))
                .append('\n');
        for (MethodResult m : r.results()) {
            Map<String, ModeTraining.Evaluation> rows = r.optOut().get(m.id());
            if (rows == null) continue;
            optOutRow(b, m.label(), "none", m.eval(), r.evalDomains());
            rows.forEach((removed, e) -> optOutRow(b, m.label(), removed, e, r.evalDomains()));
        }
        return b.toString();
    }

    private static void optOutRow(
            StringBuilder b, String label, String removed, ModeTraining.Evaluation e, List<String> domains) {
        b.append("| ").append(label).append(" | ").append(removed).append(" |");
        double sum = 0;
        for (String d : domains) {
            double acc = e.scores().get(d).accuracy();
            sum += acc;
            b.append(String.format(Locale.ROOT, " %.2f |", 100 * acc));
        }
        b.append(String.format(Locale.ROOT, " %.2f |%n", 100 * sum / domains.size()));
    }

    /**
     * Routers without stage-2 training against the trained gate: test accuracy (%) of the stage-1 experts (frozen)
     * under each router built with no stage-2 step, then under the gate trained for S2 steps (MoDE N× frozen experts;
     * and, for reference, gate + experts), and the share of the expert weight that each target domain's tokens give
     * its own expert (mean over blocks of α_own / Σ_j α_j). Empty when the experiment composed no experts.
     */
    public static String routerTable(ModeExperiment.Report r) {
        if (r.routers().isEmpty()) return "";
        List<String> own =
                r.evalDomains().stream().filter(r.targets()::contains).toList();
        StringBuilder b = new StringBuilder("| router | stage-2 steps |");
        for (String d : r.evalDomains()) b.append(' ').append(title(d)).append(" |");
        b.append(" Avg |");
        for (String d : own) b.append(" own expert on ").append(title(d)).append(" |");
        b.append("\n|---|---:|")
                .append("---:|".repeat(r.evalDomains().size() + 1 + own.size()))
                .append('\n');
        for (ModeExperiment.RouterResult rr : r.routers()) routerRow(b, rr.label(), 0, rr.eval(), r, own);
        for (MethodResult m : r.results())
            if (m.runs().size() > 1) // two-stage: the stage-1 runs and stage 2
            routerRow(b, "trained: " + m.label(), r.settings().stage2Steps(), m.eval(), r, own);
        return b.toString();
    }

    private static void routerRow(
            StringBuilder b,
            String label,
            int steps,
            ModeTraining.Evaluation e,
            ModeExperiment.Report r,
            List<String> own) {
        b.append("| ").append(label).append(" | ").append(steps).append(" |");
        double sum = 0;
        for (String d : r.evalDomains()) {
            double acc = e.scores().get(d).accuracy();
            sum += acc;
            b.append(String.format(Locale.ROOT, " %.2f |", 100 * acc));
        }
        b.append(String.format(
                Locale.ROOT, " %.2f |", 100 * sum / r.evalDomains().size()));
        for (String d : own)
            b.append(String.format(
                    Locale.ROOT,
                    " %.1f%% |",
                    100 * ownExpertShare(e, d, r.targets().indexOf(d))));
        b.append('\n');
    }

    /**
     * On domain {@code domain}'s test tokens, the mean over blocks of expert {@code expert}'s weight divided by the
     * weight of all experts (the backbone left out): 1 when the experts' share goes wholly to the own expert.
     */
    public static double ownExpertShare(ModeTraining.Evaluation e, String domain, int expert) {
        double[][] w = e.gateWeights().get(domain);
        double share = 0;
        for (double[] blk : w) {
            double experts = 0;
            for (int j = 1; j < blk.length; j++) experts += blk[j];
            share += blk[1 + expert] / experts;
        }
        return share / w.length;
    }

    /** Mean gate weights per domain and block for every MoDE row with more than one expert. */
    public static String gateTable(ModeExperiment.Report r) {
        StringBuilder b = new StringBuilder();
        for (MethodResult m : r.results()) {
            if (m.gateWeights().isEmpty()) continue;
            List<String> branches = branchNames(m, r);
            b.append("\n").append(m.label()).append(":\n\n| test domain | block |");
            for (String br : branches) b.append(' ').append(br).append(" |");
            b.append("\n|---|---:|").append("---:|".repeat(branches.size())).append('\n');
            for (Map.Entry<String, double[][]> e : m.gateWeights().entrySet()) {
                for (int blk = 0; blk < e.getValue().length; blk++) {
                    b.append("| ")
                            .append(title(e.getKey()))
                            .append(" | ")
                            .append(blk)
                            .append(" |");
                    for (double w : e.getValue()[blk]) b.append(String.format(Locale.ROOT, " %.3f |", w));
                    b.append('\n');
                }
            }
        }
        return b.toString();
    }

    /** "backbone", then one name per expert of a MoDE row (from its id: stage-1, 1× or composed). */
    static List<String> branchNames(MethodResult m, ModeExperiment.Report r) {
        List<String> out = new ArrayList<>(List.of("backbone"));
        int experts = m.gateWeights().values().iterator().next()[0].length - 1;
        if (m.id().startsWith("expert-")) out.add(m.id().substring("expert-".length()) + " expert");
        else if (experts == r.targets().size() && !m.id().equals("mode-1x"))
            for (String t : r.targets()) out.add(t + " expert");
        else for (int j = 0; j < experts; j++) out.add("expert " + j);
        return out;
    }

    /** The whole Markdown report. */
    public static String markdown(ModeExperiment.Report r, String provenance) {
        ModeExperiment.Settings s = r.settings();
        StringBuilder b = new StringBuilder();
        b.append("# MoDE experiment (the paper's Table 1 in miniature)\n\n");
        if (provenance != null && !provenance.isBlank())
            b.append(provenance.strip()).append("\n\n");
        b.append("Next-token accuracy (%) on each domain's held-out test split (")
                .append(s.evalWindows())
                .append(" windows of ")
                .append(s.hyper().seqLen())
                .append(" tokens per domain); Avg is the unweighted mean.\n\n");
        b.append(accuracyTable(r)).append("\nTest loss (nats/token):\n\n").append(lossTable(r));
        String optOut = optOutTable(r);
        if (!optOut.isEmpty())
            b.append("\nDomain opt-out: accuracy (%) with each expert removed at inference (the gates renormalised")
                    .append(" over the remaining branches; no retraining):\n\n")
                    .append(optOut);
        String routers = routerTable(r);
        if (!routers.isEmpty())
            b.append("\nRouters without joint training: accuracy (%) of the stage-1 experts under a gate that had no")
                    .append(" stage-2 step, against the gate trained in stage 2; \"own expert\" is the share of the")
                    .append(" experts' weight that a domain's tokens give their own expert (mean over blocks):\n\n")
                    .append(routers);
        String gates = gateTable(r);
        if (!gates.isEmpty())
            b.append("\nMean gate weights on each test domain (backbone first):\n")
                    .append(gates);
        b.append("\nWhat each method trained on (batch ")
                .append(s.hyper().batch())
                .append(" × ")
                .append(s.hyper().seqLen())
                .append(" tokens, peak LR ")
                .append(s.hyper().lr())
                .append(lrOverrides(s))
                .append(", warm-up + cosine, AdamW, seed ")
                .append(s.hyper().seed())
                .append("):\n\n");
        for (MethodResult m : r.results())
            b.append("- ").append(m.label()).append(": ").append(m.trainedOn()).append('\n');
        b.append(String.format(
                Locale.ROOT,
                "%nMoDE: B=%d blocks, k=%d layer(s) per expert per block, expert init %s, α_bb at init %.2f, "
                        + "composed gate %s, routing %s, merge %s, gate input %s.%n",
                s.blocks(),
                s.expertLayers(),
                s.expertInit().cliName(),
                s.gateInit(),
                s.gates().cliName(),
                s.routing(),
                s.merge().cliName(),
                s.gateInput().cliName()));
        b.append("\nStage timings:\n\n| stage | seconds |\n|---|---:|\n");
        r.stageSeconds().forEach((k, v) -> b.append(String.format(Locale.ROOT, "| %s | %.1f |%n", k, v)));
        return b.toString();
    }

    /** " (LoRA 0.003, full-ft 0.0003)": the methods whose rate is not the common one; empty when none. */
    private static String lrOverrides(ModeExperiment.Settings s) {
        List<String> o = new ArrayList<>();
        for (ModeExperiment.Method m : ModeExperiment.Method.values())
            if (s.learningRates().containsKey(m))
                o.add(m.id() + " " + s.learningRates().get(m));
        return o.isEmpty() ? "" : " (" + String.join(", ", o) + ")";
    }

    /** The settings as JSON, with the targets and evaluated domains (used to recognise a finished identical run). */
    public static JsonObject settingsJson(ModeExperiment.Settings s, List<String> targets, List<String> evalDomains) {
        JsonObject st = new JsonObject();
        st.addProperty("stage1_steps", s.stage1Steps());
        st.addProperty("stage2_steps", s.stage2Steps());
        st.addProperty("total_steps", s.totalSteps(targets.size()));
        st.addProperty("batch", s.hyper().batch());
        st.addProperty("seq_len", s.hyper().seqLen());
        st.addProperty("lr", s.hyper().lr());
        if (!s.learningRates().isEmpty()) {
            JsonObject lrs = new JsonObject();
            for (ModeExperiment.Method m : ModeExperiment.Method.values())
                if (s.learningRates().containsKey(m))
                    lrs.addProperty(m.id(), s.learningRates().get(m));
            st.add("lr_by_method", lrs);
        }
        st.addProperty("warmup_frac", s.hyper().warmupFrac());
        st.addProperty("seed", s.hyper().seed());
        st.addProperty("blocks", s.blocks());
        st.addProperty("layers_per_expert", s.expertLayers());
        st.addProperty("expert_init", s.expertInit().cliName());
        st.addProperty("gate_init_backbone", s.gateInit());
        st.addProperty("gate_construction", s.gates().cliName());
        st.addProperty("router_temperature", s.routerTemperature());
        st.addProperty("routing", s.routing().toString());
        st.addProperty("merge", s.merge().cliName());
        st.addProperty("gate_input", s.gateInput().cliName());
        st.addProperty("lora_rank", s.lora().rank());
        st.addProperty("lora_alpha", s.lora().alpha());
        st.addProperty(
                "lora_targets",
                String.join(
                        ",",
                        s.lora().targets().stream().map(Enum::name).sorted().toList()));
        st.addProperty("eval_windows", s.evalWindows());
        st.addProperty("val_windows", s.hyper().valWindows());
        st.addProperty(
                "methods",
                String.join(
                        ",",
                        s.methods().stream()
                                .map(ModeExperiment.Method::id)
                                .sorted()
                                .toList()));
        JsonArray t = new JsonArray();
        targets.forEach(t::add);
        st.add("targets", t);
        JsonArray e = new JsonArray();
        evalDomains.forEach(e::add);
        st.add("eval_domains", e);
        return st;
    }

    /** The report as JSON (every number of the Markdown, plus per-run throughput). */
    public static JsonObject json(ModeExperiment.Report r) {
        JsonObject o = new JsonObject();
        o.add("settings", settingsJson(r.settings(), r.targets(), r.evalDomains()));
        o.addProperty("backbone_weights_hash", r.backbone().weightsHash());
        JsonArray targets = new JsonArray();
        r.targets().forEach(targets::add);
        o.add("targets", targets);
        JsonArray rows = new JsonArray();
        for (MethodResult m : r.results()) {
            JsonObject row = new JsonObject();
            row.addProperty("id", m.id());
            row.addProperty("method", m.label());
            row.addProperty("trained_on", m.trainedOn());
            row.addProperty("steps", m.steps());
            row.addProperty("params_total", m.params().total());
            row.addProperty("params_trainable", m.params().trainable());
            row.addProperty("params_added", m.params().added());
            JsonObject acc = new JsonObject(), loss = new JsonObject();
            for (String d : r.evalDomains()) {
                LossStats ls = m.eval().scores().get(d);
                acc.addProperty(d, ls.accuracy());
                loss.addProperty(d, ls.meanLoss());
            }
            row.add("accuracy", acc);
            row.add("loss", loss);
            row.addProperty("mean_accuracy", m.meanAccuracy(r.evalDomains()));
            row.addProperty("mean_loss", m.meanLoss(r.evalDomains()));
            JsonObject vacc = new JsonObject(), vloss = new JsonObject();
            m.validation().forEach((d, ls) -> {
                vacc.addProperty(d, ls.accuracy());
                vloss.addProperty(d, ls.meanLoss());
            });
            row.add("validation_accuracy", vacc);
            row.add("validation_loss", vloss);
            if (m.validation().keySet().containsAll(r.evalDomains()))
                row.addProperty("mean_validation_accuracy", m.meanValidationAccuracy(r.evalDomains()));
            if (!m.gateWeights().isEmpty()) {
                JsonObject g = new JsonObject();
                m.gateWeights().forEach((d, w) -> {
                    JsonArray blocks = new JsonArray();
                    for (double[] blk : w) {
                        JsonArray a = new JsonArray();
                        for (double v : blk) a.add(v);
                        blocks.add(a);
                    }
                    g.add(d, blocks);
                });
                row.add("gate_weights", g);
            }
            JsonArray runs = new JsonArray();
            for (ModeTraining.Run run : m.runs()) {
                JsonObject ro = new JsonObject();
                ro.addProperty("run", run.id());
                ro.addProperty("steps", run.steps());
                ro.addProperty("seconds", run.seconds());
                ro.addProperty("final_train_loss", run.lastLoss());
                ro.addProperty("tokens_per_s", run.tokensPerSecond());
                runs.add(ro);
            }
            row.add("runs", runs);
            row.addProperty("seconds", m.seconds());
            rows.add(row);
        }
        o.add("results", rows);
        JsonArray optOut = new JsonArray();
        r.optOut()
                .forEach((id, byRemoved) -> byRemoved.forEach((removed, e) -> {
                    JsonObject row = new JsonObject();
                    row.addProperty("id", id);
                    row.addProperty("removed", removed);
                    JsonObject acc = new JsonObject(), loss = new JsonObject();
                    for (String d : r.evalDomains()) {
                        acc.addProperty(d, e.scores().get(d).accuracy());
                        loss.addProperty(d, e.scores().get(d).meanLoss());
                    }
                    row.add("accuracy", acc);
                    row.add("loss", loss);
                    optOut.add(row);
                }));
        o.add("opt_out", optOut);
        JsonArray routers = new JsonArray();
        for (ModeExperiment.RouterResult rr : r.routers()) {
            JsonObject row = new JsonObject();
            row.addProperty("id", rr.id());
            row.addProperty("router", rr.label());
            row.addProperty("stage2_steps", 0);
            JsonObject acc = new JsonObject(), loss = new JsonObject(), own = new JsonObject();
            for (String d : r.evalDomains()) {
                acc.addProperty(d, rr.eval().scores().get(d).accuracy());
                loss.addProperty(d, rr.eval().scores().get(d).meanLoss());
                int j = r.targets().indexOf(d);
                if (j >= 0) own.addProperty(d, ownExpertShare(rr.eval(), d, j));
            }
            row.add("accuracy", acc);
            row.add("loss", loss);
            row.add("own_expert_share", own);
            routers.add(row);
        }
        o.add("routers", routers);
        JsonObject secs = new JsonObject();
        r.stageSeconds().forEach(secs::addProperty);
        o.add("stage_seconds", secs);
        return o;
    }

    /**
     * Writes results.md, results.json and, where a {@link ChartWriter} is registered, loss-curves.png and
     * gate-weights-&lt;id&gt;.png into the run folder; returns the files written.
     */
    public static List<Path> write(ModeExperiment.Report r, String provenance) throws IOException {
        Path out = r.settings().out();
        List<Path> written = new ArrayList<>();
        AtomicFiles.writeString(out.resolve(MARKDOWN), markdown(r, provenance));
        written.add(out.resolve(MARKDOWN));
        AtomicFiles.writeString(
                out.resolve(JSON),
                new GsonBuilder().setPrettyPrinting().create().toJson(json(r)) + "\n");
        written.add(out.resolve(JSON));
        Optional<ChartWriter> charts = ChartWriter.find();
        if (charts.isEmpty()) return written;
        if (lossPlot(charts.get(), r, out.resolve(LOSS_PNG))) written.add(out.resolve(LOSS_PNG));
        for (MethodResult m : r.results()) {
            if (!m.gateWeights().isEmpty() && !m.id().startsWith("expert-")) {
                Path png = out.resolve("gate-weights-" + m.id() + ".png");
                gatePlot(charts.get(), r, m, png);
                written.add(png);
            }
        }
        return written;
    }

    /**
     * Training loss (moving average over 10 steps) of every run; stage-2 runs start after the stage-1 steps. False
     * when no run has a training step to draw.
     */
    static boolean lossPlot(ChartWriter charts, ModeExperiment.Report r, Path png) throws IOException {
        List<ChartWriter.Line> lines = new ArrayList<>();
        List<String> seen = new ArrayList<>();
        int offset = r.targets().size() * r.settings().stage1Steps();
        for (MethodResult m : r.results()) {
            for (ModeTraining.Run run : m.runs()) {
                if (seen.contains(run.id())) continue;
                seen.add(run.id());
                double[][] curve = readLoss(run.metrics());
                if (curve[0].length == 0) continue;
                boolean stage2 = run.id().startsWith("mode-") && !run.id().equals("mode-1x");
                if (stage2) for (int i = 0; i < curve[0].length; i++) curve[0][i] += offset;
                lines.add(new ChartWriter.Line(
                        run.id() + (run.id().startsWith("expert-") ? " (own domain)" : ""),
                        curve[0],
                        smooth(curve[1], 10),
                        false));
            }
        }
        if (lines.isEmpty()) return false;
        charts.lines(
                png,
                new ChartWriter.Size(1000, 600),
                "training loss (moving average of 10 steps)",
                "step of the method's budget",
                "loss (nats/token)",
                lines);
        return true;
    }

    /** Stacked bars: for each block and test domain, the mean weight of each branch. */
    static void gatePlot(ChartWriter charts, ModeExperiment.Report r, MethodResult m, Path png) throws IOException {
        List<String> categories = new ArrayList<>();
        int blocks = m.gateWeights().values().iterator().next().length;
        for (int b = 0; b < blocks; b++)
            for (String d : m.gateWeights().keySet()) categories.add("block " + b + " " + title(d));
        List<String> branches = branchNames(m, r);
        List<ChartWriter.Bars> series = new ArrayList<>();
        for (int br = 0; br < branches.size(); br++) {
            List<Double> values = new ArrayList<>();
            for (int b = 0; b < blocks; b++) for (double[][] w : m.gateWeights().values()) values.add(w[b][br]);
            series.add(new ChartWriter.Bars(branches.get(br), values));
        }
        charts.stackedBars(
                png,
                new ChartWriter.Size(1000, 550),
                "mean gate weights per test domain: " + m.label(),
                "block / test domain",
                "mean weight",
                categories,
                series,
                1.0);
    }

    private static double[][] readLoss(Path metrics) throws IOException {
        List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
        for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            if (!"train".equals(o.get("type").getAsString())) continue;
            xs.add(o.get("step").getAsDouble());
            ys.add(o.get("loss").getAsDouble());
        }
        double[][] out = new double[2][xs.size()];
        for (int i = 0; i < xs.size(); i++) {
            out[0][i] = xs.get(i);
            out[1][i] = ys.get(i);
        }
        return out;
    }

    private static double[] smooth(double[] y, int w) {
        double[] out = new double[y.length];
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i];
            if (i >= w) sum -= y[i - w];
            out[i] = sum / Math.min(i + 1, w);
        }
        return out;
    }
}
