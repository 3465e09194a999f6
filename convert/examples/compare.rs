//! Debug aid: run two models on one image, print output statistics side by side.
use outpost_runtime::{Inference, preprocess::load_rgb};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let img = load_rgb(std::path::Path::new(&a[3])).unwrap();
    for m in &a[1..3] {
        let model = outpost_models::Model::open(m).unwrap();
        let mut inf = Inference::new(&model, Default::default()).unwrap();
        inf.run_image(&img.view()).unwrap();
        let s = inf.session();
        for i in 0..2 {
            let o = s.output_f32(i).unwrap();
            let mx = o.iter().cloned().fold(f32::MIN, f32::max);
            let mn = o.iter().cloned().fold(f32::MAX, f32::min);
            println!(
                "{m} out{i} sum {} min {mn} max {mx} first {:?}",
                o.iter().sum::<f32>(),
                &o[..4]
            );
        }
        if let Ok(x) = inf.session_mut().input_i8(0) {
            println!("input i8 sum {}", x.iter().map(|&v| v as i64).sum::<i64>());
        }
        let g = &model.meta().graph;
        for t in g.tensors.iter().take(3) {
            println!("{} {:?} {:?}", t.name, t.dtype, t.quant);
        }
    }
}
