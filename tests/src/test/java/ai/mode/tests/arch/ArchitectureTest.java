package ai.mode.tests.arch;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.GeneralCodingRules.ACCESS_STANDARD_STREAMS;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.conditions.ArchConditions;
import java.util.Map;
import java.util.Set;

/**
 * The layering of the project as rules over the compiled classes of every module (ArchUnit), so a change that breaks
 * it fails the build with the offending class and dependency named (docs/design.md, "Layers and the rules that
 * hold them").
 *
 * <p>Backend implementations ({@code ai.mode.runtime.cpu/.cuda/.emu/.device}) and the native bindings are reached
 * only through the backend contract ({@code ai.mode.runtime}: {@code Backend}, {@code Tensor}, {@code Backends},
 * {@code BackendProvider}); the contract itself never names an implementation (providers are found with
 * {@link java.util.ServiceLoader}); lower layers never reach up; no two packages depend on each other; and only the
 * command-line packages print or end the JVM. The parallel runtime's NCCL path needs the CUDA device's stream and
 * memory, which the contract does not expose yet: those dependencies are listed by class in
 * {@link #PARALLEL_DEVICE_ACCESS}, so that any new one fails until it is either listed here or, better, served by
 * the contract.
 */
@AnalyzeClasses(
        packages = "ai.mode",
        importOptions = {ImportOption.DoNotIncludeTests.class, ImportOption.DoNotIncludeJars.class})
class ArchitectureTest {
    /** Backend implementations and native bindings: reached only through the backend contract. */
    private static final String[] BACKEND_INTERNALS = {
        "ai.mode.runtime.cpu..",
        "ai.mode.runtime.cuda..",
        "ai.mode.runtime.emu..",
        "ai.mode.runtime.device..",
        "ai.mode.bindings..",
        "ai.mode.kernels.."
    };

    /** The command-line packages: the only code that may print to the standard streams or end the JVM. */
    private static final String[] COMMAND_LINE = {"ai.mode.cli..", "ai.mode.parallel.cli..", "ai.mode.bench.."};

    /**
     * What the parallel runtime reaches inside the cuda backend and the bindings today, class by class: NCCL
     * communicators are created from the CUDA device (its ordinal, context and stream) and read and write device
     * tensors' memory directly; the launcher creates the CUDA devices of a process and the NCCL unique id.
     */
    static final Map<String, Set<String>> PARALLEL_DEVICE_ACCESS = Map.of(
            "ai.mode.parallel.comm.NcclCommunicator",
                    Set.of(
                            "ai.mode.runtime.cuda.CudaDevice",
                            "ai.mode.runtime.device.DeviceBackend",
                            "ai.mode.runtime.device.DeviceTensor",
                            "ai.mode.bindings.Nccl",
                            "ai.mode.bindings.CudaStream",
                            "ai.mode.bindings.CudaContext",
                            "ai.mode.bindings.NativeCallException"),
            "ai.mode.parallel.sched.ParallelLaunch",
                    Set.of(
                            "ai.mode.runtime.cuda.CudaDevice",
                            "ai.mode.runtime.device.DeviceBackend",
                            "ai.mode.bindings.Nccl"));

    @ArchTest
    static final ArchRule modelUsesBackendsOnlyThroughTheContract = noClasses()
            .that()
            .resideInAnyPackage("ai.mode.model..", "ai.mode.cli..")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage(BACKEND_INTERNALS)
            .because("the model and the CLI run on any backend through ai.mode.runtime.Backend and Backends");

    @ArchTest
    static final ArchRule backendContractNamesNoImplementation = noClasses()
            .that()
            .resideInAPackage("ai.mode.runtime")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage(
                    "ai.mode.runtime.cpu..",
                    "ai.mode.runtime.cuda..",
                    "ai.mode.runtime.emu..",
                    "ai.mode.runtime.device..")
            .because("Backends finds the implementations through ServiceLoader, so the contract stands alone");

    @ArchTest
    static final ArchRule lowerLayersNeverReachUp = noClasses()
            .that()
            .resideInAnyPackage("ai.mode.runtime..", "ai.mode.bindings..", "ai.mode.kernels..")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage("ai.mode.model..", "ai.mode.parallel..", "ai.mode.cli..", "ai.mode.bench..");

    @ArchTest
    static final ArchRule modelNeverReachesTheParallelRuntime = noClasses()
            .that()
            .resideInAnyPackage("ai.mode.model..", "ai.mode.cli..")
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage("ai.mode.parallel..", "ai.mode.bench..");

    @ArchTest
    static final ArchRule parallelReachesBackendInternalsOnlyWhereListed = classes()
            .that()
            .resideInAPackage("ai.mode.parallel..")
            .should(ArchConditions.onlyHaveDependenciesWhere(listedOrOutsideBackendInternals()));

    /**
     * No two packages depend on each other, with one named exception: the benchmark application's JMH work table
     * ({@code ai.mode.bench.JmhWork}) reads the model shape of {@code ai.mode.bench.jmh.OpsBench} to turn its timings
     * into throughputs, while the JMH benchmarks use the bench package's helpers.
     */
    @ArchTest
    static final ArchRule noPackageCycles = slices().matching("ai.mode.(**)")
            .should()
            .beFreeOfCycles()
            .ignoreDependency(
                    DescribedPredicate.describe(
                            "ai.mode.bench.JmhWork", c -> topLevel(c.getName()).equals("ai.mode.bench.JmhWork")),
                    DescribedPredicate.describe(
                            "ai.mode.bench.jmh.OpsBench",
                            c -> topLevel(c.getName()).equals("ai.mode.bench.jmh.OpsBench")));

    @ArchTest
    static final ArchRule libraryNeverPrintsOrExits = noClasses()
            .that()
            .resideInAPackage("ai.mode..")
            .and()
            .resideOutsideOfPackages(COMMAND_LINE)
            .should(ACCESS_STANDARD_STREAMS)
            .orShould()
            .callMethod(System.class, "exit", int.class)
            .orShould()
            .callMethod(Runtime.class, "exit", int.class)
            .orShould()
            .callMethod(Runtime.class, "halt", int.class)
            .because("library code reports through exceptions and System.Logger; the CLI decides what to print");

    private static DescribedPredicate<Dependency> listedOrOutsideBackendInternals() {
        return DescribedPredicate.describe(
                "target outside the backend internals, or listed in PARALLEL_DEVICE_ACCESS",
                d -> !isBackendInternal(d.getTargetClass())
                        || PARALLEL_DEVICE_ACCESS
                                .getOrDefault(topLevel(d.getOriginClass().getName()), Set.of())
                                .contains(topLevel(d.getTargetClass().getName())));
    }

    private static boolean isBackendInternal(JavaClass c) {
        String pkg = c.getPackageName();
        for (String p : BACKEND_INTERNALS) {
            String prefix = p.substring(0, p.length() - 2);
            if (pkg.equals(prefix) || pkg.startsWith(prefix + ".")) return true;
        }
        return false;
    }

    private static String topLevel(String className) {
        int dollar = className.indexOf('$');
        return dollar < 0 ? className : className.substring(0, dollar);
    }
}
