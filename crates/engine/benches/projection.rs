//! The benchmark configuration of MODEL.md section 6 (N = 10,000, H = 30, K = 8)
//! on one and on two threads, plus the stages that dominate it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::{
    Assumptions, BENCHMARK_PORTFOLIO, InstructionSet, ProjectionParams, Shocks,
    limit_instruction_set, model_inputs, project, simulate,
};
use std::hint::black_box;

const PATH_STEPS: u64 = 10_000 * 360;

fn benchmark_params() -> ProjectionParams {
    ProjectionParams {
        seed: Some(12345),
        ..ProjectionParams::default()
    }
}

fn projection(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("projection_n10000_h30");
    group.throughput(Throughput::Elements(PATH_STEPS));
    group.sample_size(30);
    // Every instruction set this CPU runs, widest first; the portable path
    // (no FMA in hardware) only on one thread, it is there for correctness.
    let runnable = [
        InstructionSet::Avx512,
        InstructionSet::Avx2,
        InstructionSet::Portable,
    ]
    .into_iter()
    .filter(|isa| *isa <= InstructionSet::detected());
    for isa in runnable {
        limit_instruction_set(isa);
        let thread_counts: &[usize] = match isa {
            InstructionSet::Portable => &[1],
            _ => &[1, 2],
        };
        for &threads in thread_counts {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            group.bench_function(format!("{}/{threads}_threads", isa.name()), |bencher| {
                bencher.iter(|| {
                    pool.install(|| {
                        project(
                            black_box(&BENCHMARK_PORTFOLIO),
                            &benchmark_params(),
                            &Assumptions::default(),
                            &Shocks::Random,
                            &(),
                        )
                        .unwrap()
                    })
                })
            });
        }
    }
    limit_instruction_set(InstructionSet::detected());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let inputs = model_inputs(
        &BENCHMARK_PORTFOLIO,
        &benchmark_params(),
        &Assumptions::default(),
    )
    .unwrap();
    group.bench_function("1_thread_zero_shocks", |bencher| {
        bencher.iter(|| pool.install(|| simulate(black_box(&inputs), &Shocks::Zero, &()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, projection);
criterion_main!(benches);
