//! Shard balance and movement for `--shard`: 10,000 synthetic repository
//! names assigned by rendezvous hashing, for N = 2, 4, 8, 16 shards. Prints
//! max/mean units per shard and the fraction that moves from N to N+1
//! shards (the ideal is 1/(N+1)). Pure hashing: no registry. Run with
//! `cargo run --release -p regsync-tests --example shard_balance`.

use regsync::shard::owner;

fn main() {
    let units: Vec<String> = (0..10_000).map(|i| format!("registry.example/org-{}/repo-{i}", i % 97)).collect();
    println!("| N | min | max | mean | max/mean | moved N→N+1 | ideal 1/(N+1) | moved / ideal |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [2u32, 4, 8, 16] {
        let mut per = vec![0usize; n as usize];
        for u in &units {
            per[owner(u, n) as usize] += 1;
        }
        let mean = units.len() as f64 / n as f64;
        let (min, max) = (*per.iter().min().unwrap(), *per.iter().max().unwrap());
        let moved = units.iter().filter(|u| owner(u, n) != owner(u, n + 1)).count() as f64 / units.len() as f64;
        let ideal = 1.0 / (n as f64 + 1.0);
        println!(
            "| {n} | {min} | {max} | {mean:.0} | {:.3} | {:.4} | {ideal:.4} | {:.3} |",
            max as f64 / mean,
            moved,
            moved / ideal
        );
    }
}
