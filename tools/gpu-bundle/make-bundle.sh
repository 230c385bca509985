#!/usr/bin/env bash
# make-bundle.sh OUT_DIR CLASSPATH TEST_CLASSES: assembles the self-contained GPU bundle (docs/gpu-check.md).
#
#   CLASSPATH     the tests module's test classpath as Maven resolved it (colon-separated jars and class folders;
#                 tests/pom.xml writes it to <build dir>/gpu-bundle.classpath), so no jar name is written here
#   TEST_CLASSES  the tests module's compiled test classes (the gpu-tagged tests, the kernel tests, GpuCheck, the
#                 Hugging Face fixture)
#
# Writes OUT_DIR (replaced whole) holding: runtime.tgz (a jlink-ed Java runtime with the modules the project's own
# code needs, as jdeps reports them, plus a fixed base set), lib/ (every classpath entry as a jar, class folders
# jarred, in classpath order in lib/classpath.txt, except jars that carry bytedeco native libraries: the CUDA, MKL,
# OpenBLAS and JavaCPP carriers), kernels/ (fatbins, .cu sources, resource table), fixtures/hf-llama-reference,
# gpu-check.sh and BUNDLE.txt (what is inside and what was left out). Fails when OUT_DIR would exceed 52 MiB.
# Needs JAVA_HOME pointing to a JDK 25+ (jlink, jdeps, jar) and tar, gzip; objcopy, if present, strips the
# runtime's native debug symbols.
set -euo pipefail

OUT="${1:?usage: make-bundle.sh OUT_DIR CLASSPATH TEST_CLASSES}"
CLASSPATH_LIST="${2:?usage: make-bundle.sh OUT_DIR CLASSPATH TEST_CLASSES}"
TEST_CLASSES="${3:?usage: make-bundle.sh OUT_DIR CLASSPATH TEST_CLASSES}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIMIT_BYTES=$((52 * 1024 * 1024))
# jdeps finds what the project's code calls; these are added whatever it says: the issue's measured base set, and
# jdk.zipfs, which JUnit's launcher needs to scan a jar for tests (a service provider jdeps cannot see)
BASE_MODULES="java.base,java.logging,java.management,jdk.unsupported,jdk.incubator.vector,jdk.zipfs"

log() { echo "[gpu-bundle] $*" >&2; }
die() { echo "gpu-bundle: $*" >&2; exit 1; }

[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/jlink" ] \
  || die "JAVA_HOME must point to a JDK 25+ with jlink (it is '${JAVA_HOME:-unset}'); ./mode gpu-bundle finds one"
[ -d "$TEST_CLASSES/ai/mode/tests/gpucheck" ] \
  || die "$TEST_CLASSES holds no compiled gpu-check classes; build first (./mode gpu-bundle does)"
command -v tar >/dev/null && command -v gzip >/dev/null || die "tar and gzip are needed"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/mode-gpu-bundle.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
B="$STAGE/bundle"
mkdir -p "$B/lib" "$B/kernels" "$B/fixtures"
: > "$B/lib/classpath.txt"
LEFT_OUT=()
PROJECT_JARS=()

IFS=':' read -r -a ENTRIES <<< "$(tr -d '\n' <<< "$CLASSPATH_LIST")"
# Jars that carry bytedeco native libraries (org/bytedeco/<project>/<platform>/lib*.so): never needed on the GPU
# machine, whose CUDA libraries come from the driver, the toolkit or the Python wheels.
JARS=()
for e in "${ENTRIES[@]}"; do [ -f "$e" ] && JARS+=("$e"); done
CARRIERS="$STAGE/carriers.txt"
"$JAVA_HOME/bin/java" "$HERE/NativeCarriers.java" "${JARS[@]}" > "$CARRIERS" || die "cannot read the classpath's jars"
is_native_carrier() { grep -qxF "$1" "$CARRIERS"; }

add_entry() {
  local entry="$1" name
  if [ -d "$entry" ]; then
    [ -n "$(ls -A "$entry" 2>/dev/null)" ] || return 0
    # <module>/<build dir>/<classes|test-classes> -> <module>-<classes|test-classes>.jar
    name="$(basename "$(dirname "$(dirname "$entry")")")-$(basename "$entry").jar"
    "$JAVA_HOME/bin/jar" --create --file "$B/lib/$name" -C "$entry" .
  elif [ -f "$entry" ]; then
    name="$(basename "$entry")"
    if is_native_carrier "$entry"; then
      LEFT_OUT+=("$name ($(( $(stat -c %s "$entry") >> 20 )) MiB): carries native libraries the GPU machine has")
      return 0
    fi
    cp "$entry" "$B/lib/$name"
  else
    return 0
  fi
  echo "$name" >> "$B/lib/classpath.txt"
  case "$(cd "$(dirname "$entry")" && pwd)/" in "$ROOT"/*) PROJECT_JARS+=("$B/lib/$name") ;; esac
}

add_entry "$TEST_CLASSES"
for e in "${ENTRIES[@]}"; do
  [ -n "$e" ] && [ "$(cd "$(dirname "$e")" 2>/dev/null && pwd)/$(basename "$e")" != "$(cd "$TEST_CLASSES" && pwd)" ] \
    && add_entry "$e"
done
log "$(wc -l < "$B/lib/classpath.txt") classpath entries, ${#LEFT_OUT[@]} native carrier jars left out"

# ------------------------------------------------------------------ the runtime: jdeps over the project's own code
LIB_CP="$(sed "s|^|$B/lib/|" "$B/lib/classpath.txt" | paste -sd:)"
FOUND="$("$JAVA_HOME/bin/jdeps" --ignore-missing-deps --print-module-deps --no-recursive --multi-release 25 -q \
  --class-path "$LIB_CP" "${PROJECT_JARS[@]}")" || die "jdeps failed on the project's jars"
MODULES="$(tr ',' '\n' <<< "$BASE_MODULES,$FOUND" | sed '/^$/d' | sort -u | paste -sd,)"
"$JAVA_HOME/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages \
  --compress zip-9 --output "$STAGE/runtime" 2> >(grep -v 'Using incubator modules' >&2)
# the symbol tables of the JVM's own libraries (libjvm.so alone: 29 -> 25 MB); their dynamic symbols stay
if command -v strip >/dev/null; then
  find "$STAGE/runtime/lib" -name '*.so' -exec strip --strip-unneeded {} +
fi
RUNTIME_MB=$(( $(du -sb "$STAGE/runtime" | cut -f1) >> 20 ))
tar -C "$STAGE" -cf - runtime | gzip -6 > "$B/runtime.tgz"
log "runtime: $MODULES ($RUNTIME_MB MiB, $(( $(stat -c %s "$B/runtime.tgz") >> 20 )) MiB packed)"

# ------------------------------------------------------------------ kernels and the Hugging Face fixture
# The fatbins stay inside the kernels jar, where the cuda backend loads them (8 MB loose, 2 MB zipped); the .cu
# sources and the resource table are also put beside it as plain files, for reading and for nvcc/NVRTC by hand.
FATBINS=0
for jar in "${PROJECT_JARS[@]}"; do
  if "$JAVA_HOME/bin/jar" --list --file "$jar" | grep -qx 'ai/mode/kernels/entrypoints.txt'; then
    FATBINS=$("$JAVA_HOME/bin/jar" --list --file "$jar" | grep -c '^ai/mode/kernels/fatbin/.*\.fatbin$')
    (cd "$STAGE" && "$JAVA_HOME/bin/jar" --extract --file "$jar" ai/mode/kernels)
    for part in src kernels.json entrypoints.txt; do
      [ -e "$STAGE/ai/mode/kernels/$part" ] && mv "$STAGE/ai/mode/kernels/$part" "$B/kernels/"
    done
    KERNELS_JAR="$(basename "$jar")"
    break
  fi
done
[ -d "$B/kernels/src" ] || die "no kernel sources (ai/mode/kernels/src) in the project's jars"
[ "$FATBINS" -gt 0 ] || log "no fatbins (nvcc was missing at build time): kernels will compile through NVRTC"
[ -f "$TEST_CLASSES/hf-llama-reference/config.json" ] || die "$TEST_CLASSES lacks the hf-llama-reference fixture"
cp -r "$TEST_CLASSES/hf-llama-reference" "$B/fixtures/"
cp "$HERE/gpu-check.sh" "$B/gpu-check.sh"
chmod +x "$B/gpu-check.sh"

# ------------------------------------------------------------------ manifest and the size limit
{
  echo "MoDE-J GPU bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "Run: bash <this folder>/gpu-check.sh OUTDIR   (docs/gpu-check.md)"
  echo
  echo "runtime.tgz: $("$JAVA_HOME/bin/java" -version 2>&1 | head -1), jlink-ed with $MODULES ($RUNTIME_MB MiB unpacked)"
  echo "kernels: $FATBINS fatbins in lib/$KERNELS_JAR, $(find "$B/kernels/src" -name '*.cu' | wc -l) .cu sources in kernels/src"
  echo "classpath (lib/, in order):"
  sed 's/^/  /' "$B/lib/classpath.txt"
  echo "left out:"
  for l in "${LEFT_OUT[@]}"; do echo "  $l"; done
} > "$B/BUNDLE.txt"
SIZE=$(du -sb "$B" | cut -f1)
[ "$SIZE" -le "$LIMIT_BYTES" ] || die "the bundle is $((SIZE >> 20)) MiB, over the 52 MiB limit: lib/ $(( $(du -sb "$B/lib" | cut -f1) >> 20 )) MiB, runtime.tgz $(( $(stat -c %s "$B/runtime.tgz") >> 20 )) MiB"
echo "size: $SIZE bytes ($((SIZE >> 20)) MiB, limit 52 MiB)" >> "$B/BUNDLE.txt"
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$B" "$OUT"
log "wrote $OUT ($((SIZE >> 20)) MiB of 52 MiB)"
