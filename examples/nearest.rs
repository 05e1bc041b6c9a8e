//! For the README: the first ten templates of BAD that GOOD did not have, each with its nearest
//! GOOD template and their cosine, under the built-in embedder and under the sentence model.
//! usage: cargo run --release --example nearest -- MODEL_DIR GOOD.log BAD.log
//! (a BGL-style first token `-` or a label is stripped from every line, as eval_bgl.py does)

use turbolog::embed::{cosine, model, HashEmbedder, ModelEmbedder};
use turbolog::{Engine, EngineConfig};

fn lines(path: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("readable log")).into_owned();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string()).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, good, bad] = &args[..] else {
        eprintln!("usage: nearest MODEL_DIR GOOD.log BAD.log");
        std::process::exit(2);
    };
    let m = model::load(std::path::Path::new(model_dir)).unwrap_or_else(|e| panic!("{e}"));
    let mut engines = [
        Engine::with_embedder(EngineConfig::default(), Box::new(HashEmbedder::default())),
        Engine::with_embedder(EngineConfig::default(), Box::new(ModelEmbedder::new(m))),
    ];
    let good = lines(good);
    for e in &mut engines {
        for l in &good {
            e.learn_line(l);
        }
    }
    let known = engines[0].template_count();
    assert_eq!(known, engines[1].template_count(), "templates are mined from tokens: the same under both embedders");
    let mut new = Vec::new();
    for l in lines(bad) {
        let ids: Vec<u32> = engines.iter_mut().map(|e| e.learn_line(&l)).collect();
        if ids[0] as usize >= known && !new.contains(&ids[0]) {
            new.push(ids[0]);
            if new.len() == 10 {
                break;
            }
        }
    }
    println!("| new template | nearest known (built-in) | cos | nearest known (model) | cos |");
    println!("|---|---|---|---|---|");
    let cell = |s: &str| s.replace('|', "\\|").chars().take(70).collect::<String>();
    for id in new {
        let mut row = format!("| `{}` ", cell(engines[0].template_text(id)));
        for e in &engines {
            let v = e.vector(id);
            let (best, cos) = (0..known as u32).map(|k| (k, cosine(v, e.vector(k)))).fold((0, -1.0f32), |a, b| if b.1 > a.1 { b } else { a });
            row.push_str(&format!("| `{}` | {cos:.2} ", cell(e.template_text(best))));
        }
        println!("{row}|");
    }
}
