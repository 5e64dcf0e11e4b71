/* OpenBLAS peer of `qkv bench gemm`: times cblas_sgemm (row-major, no
 * transposes, alpha 1, beta 0) on the same cases with the same method as qkv
 * (one warm-up call, then repeats until >= 0.3 s and >= 5 repeats; the median
 * is reported) and prints the same JSON schema, one object per line.
 *
 * usage: openblas_gemm [--threads N] [MxNxK ...]
 *   M rows of A and C, N columns of B and C, K the inner dimension.
 *   Without case names, all of qkv's gemm cases run, in qkv's order.
 *
 * Build and run it through bench/peers/openblas.sh, which also sets the
 * thread count and OPENBLAS_CORETYPE in the environment. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Declared by OpenBLAS's cblas.h; repeated here in case a header lacks them. */
char* openblas_get_corename(void);
char* openblas_get_config(void);
void openblas_set_num_threads(int num_threads);

static const char* const kCases[] = {
    "128x128x128",   "256x256x256",  "512x512x512", "1024x1024x1024",
    "2048x2048x2048", "8192x2048x512", "64x1024x256", "4096x64x64",
};
enum { kNumCases = sizeof kCases / sizeof kCases[0] };

static const double kMinSeconds = 0.3;
static const int kMinRepeats = 5;
static const int kMaxRepeats = 10000;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Parses "MxNxK" with every part >= 1; returns 0 on success. */
static int parse_case(const char* s, long dims[3]) {
  const char* p = s;
  for (int i = 0; i < 3; ++i) {
    char* end = NULL;
    if (*p < '0' || *p > '9') return -1;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 1000000) return -1;
    dims[i] = v;
    if (i < 2) {
      if (*end != 'x') return -1;
      p = end + 1;
    } else if (*end != '\0') {
      return -1;
    }
  }
  return 0;
}

/* xorshift64*: uniform floats in [-1, 1), deterministic. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform_pm1(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
  return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static float* alloc_floats(long n) {
  size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
  float* p = aligned_alloc(64, bytes);
  if (!p) {
    fprintf(stderr, "openblas_gemm: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

static void json_string(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static char* trim(char* s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = '\0';
  while (*s == ' ') ++s;
  return s;
}

/* Runs one case; returns 0 on success, 1 if the result check fails. */
static int run_case(const char* name, long M, long N, long K, int threads,
                    const char* corename, const char* config) {
  float* A = alloc_floats(M * K);
  float* B = alloc_floats(K * N);
  float* C = alloc_floats(M * N);
  for (long i = 0; i < M * K; ++i) A[i] = uniform_pm1();
  for (long i = 0; i < K * N; ++i) B[i] = uniform_pm1();
  memset(C, 0, (size_t)(M * N) * sizeof(float));

#define SGEMM()                                                                       \
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, \
              A, (int)K, B, (int)N, 0.0f, C, (int)N)

  SGEMM(); /* warm-up: page faults, buffers, thread start */

  /* Spot check a few entries against double-precision dot products, so a
   * broken library or argument mix-up cannot produce a fast wrong number. */
  int bad = 0;
  for (int t = 0; t < 16 && !bad; ++t) {
    long i = (long)((t * 7919L) % M), j = (long)((t * 104729L) % N);
    double want = 0;
    for (long k = 0; k < K; ++k) want += (double)A[i * K + k] * B[k * N + j];
    double err = fabs(C[i * N + j] - want);
    if (!(err <= 1e-5 * sqrt((double)K) * 4 + 1e-6)) {
      fprintf(stderr, "openblas_gemm %s: C[%ld,%ld] = %g, expected %g\n", name, i, j,
              (double)C[i * N + j], want);
      bad = 1;
    }
  }

  double* ms = NULL;
  int reps = 0;
  if (!bad) {
    ms = malloc(sizeof(double) * kMaxRepeats);
    double spent = 0;
    while ((reps < kMinRepeats || spent < kMinSeconds * 1e3) && reps < kMaxRepeats) {
      double t0 = now_ms();
      SGEMM();
      double t = now_ms() - t0;
      ms[reps++] = t;
      spent += t;
    }
    qsort(ms, (size_t)reps, sizeof(double), cmp_double);
    double med = ms[reps / 2]; /* same as qkv: upper median */
    double gflops = 2.0 * (double)M * (double)N * (double)K / (med * 1e6);
    printf("{\"suite\":\"gemm\",\"case\":");
    json_string(name);
    printf(",\"threads\":%d,\"ms\":%.6f,\"gflops\":%.4f,\"gbps\":0,\"peer\":\"openblas\","
           "\"coretype\":",
           threads, med, gflops);
    json_string(corename);
    printf(",\"openblas_config\":");
    json_string(config);
    printf(",\"repeats\":%d}\n", reps);
    fflush(stdout);
  }
#undef SGEMM
  free(ms);
  free(A);
  free(B);
  free(C);
  return bad;
}

static void usage(FILE* f) {
  fprintf(f,
          "usage: openblas_gemm [--threads N] [MxNxK ...]\n"
          "Times cblas_sgemm (row-major, no transposes, alpha 1, beta 0); prints one\n"
          "JSON object per case. Default cases (qkv's gemm suite):\n ");
  for (int i = 0; i < kNumCases; ++i) fprintf(f, " %s", kCases[i]);
  fprintf(f, "\n");
}

int main(int argc, char** argv) {
  int threads = 1;
  const char* env = getenv("OPENBLAS_NUM_THREADS");
  if (env && atoi(env) >= 1) threads = atoi(env);
  int n_names = 0;  /* case names are compacted into argv[1..n_names] */
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* val = NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--threads")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "openblas_gemm: --threads: missing value\n");
        return 2;
      }
      val = argv[++i];
    } else if (!strncmp(a, "--threads=", 10)) {
      val = a + 10;
    } else if (!strncmp(a, "--", 2)) {
      fprintf(stderr, "openblas_gemm: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    } else {
      long d[3];
      if (parse_case(a, d)) {
        fprintf(stderr, "openblas_gemm: bad case '%s' (expected MxNxK, e.g. 512x512x512)\n", a);
        return 2;
      }
      argv[1 + n_names++] = (char*)a;  /* 1 + n_names <= i: never ahead */
    }
    if (val) {
      char* end = NULL;
      long n = strtol(val, &end, 10);
      if (end == val || *end || n < 1 || n > 1024) {
        fprintf(stderr, "openblas_gemm: --threads: expected a count >= 1, got '%s'\n", val);
        return 2;
      }
      threads = (int)n;
    }
  }
  const char* const* names = (const char* const*)argv + 1;
  if (n_names == 0) {
    names = kCases;
    n_names = kNumCases;
  }

  openblas_set_num_threads(threads);
  char corename[128], configbuf[512];
  snprintf(corename, sizeof corename, "%s", openblas_get_corename());
  snprintf(configbuf, sizeof configbuf, "%s", openblas_get_config());
  const char* config = trim(configbuf);
  fprintf(stderr, "openblas_gemm: core %s; config '%s'; %d thread(s)\n", corename, config,
          threads);

  int failures = 0;
  for (int i = 0; i < n_names; ++i) {
    long d[3];
    parse_case(names[i], d);
    failures += run_case(names[i], d[0], d[1], d[2], threads, corename, config);
  }
  return failures ? 1 : 0;
}
