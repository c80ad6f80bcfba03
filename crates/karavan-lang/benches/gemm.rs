//! The linear layers' product, float32 against int8, at the shapes NLLB-200-distilled-600M runs:
//! the decoder's rows (16 greedy, 64 at beam 4 over a batch of 16) through a 1024 × 4096 layer and
//! through the 256,206-word output projection, and the encoder's 1,168 rows. Prints GMAC/s (best
//! of 5) per shape and precision, on `KARAVAN_BENCH_THREADS` threads (2); int8 once per kernel the
//! processor runs (AVX-512 VNNI, AVX-512, AVX2), the best first.
//!
//! `cargo bench -p karavan-lang --bench gemm`

use std::time::Instant;

use karavan_lang::Precision;
use karavan_lang::testing::BenchWeight;

fn main() {
    let threads = std::env::var("KARAVAN_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let shapes: &[(&str, usize, usize, usize)] = &[
        ("decoder greedy, fc1", 16, 1024, 4096),
        ("decoder beam 4, fc1", 64, 1024, 4096),
        ("decoder beam 4, fc2", 64, 4096, 1024),
        ("output projection, 16 rows", 16, 1024, 256_206),
        ("output projection, 64 rows", 64, 1024, 256_206),
        ("encoder, fc1", 1168, 1024, 4096),
    ];
    // The portable kernel is plain integer code, far slower: measured only when it is all there is.
    let mut kernels = karavan_lang::testing::int8_kernels();
    if kernels.len() > 1 {
        kernels.retain(|&k| k != "portable");
    }
    println!("{threads} threads; GMAC/s, best of 5; int8 kernels: {}", kernels.join(", "));
    for &(name, m, k, n) in shapes {
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut line = format!("{name:<28} {m:>5} × {k:>5} × {n:>6}");
        let best_rate = |weight: &BenchWeight| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let started = Instant::now();
                std::hint::black_box(weight.product(&x, threads));
                best = best.min(started.elapsed().as_secs_f64());
            }
            (m * n * k) as f64 / best / 1e9
        };
        let weight = BenchWeight::new(n, k, Precision::Float32);
        let float = best_rate(&weight);
        line += &format!("   float32: {float:>6.1} ({:.0} MB)", weight.bytes() as f64 / 1e6);
        drop(weight);
        let weight = BenchWeight::new(n, k, Precision::Int8);
        line += &format!("   int8 ({:.0} MB):", weight.bytes() as f64 / 1e6);
        for kernel in &kernels {
            karavan_lang::testing::use_int8_kernel(kernel);
            let rate = best_rate(&weight);
            line += &format!(" {kernel} {rate:>6.1} ({:.2}×)", rate / float);
        }
        karavan_lang::testing::use_int8_kernel(kernels[0]);
        println!("{line}");
    }
}
