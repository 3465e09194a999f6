//! Debug aid: convert a TFLite file, feed a raw little-endian f32 input file, print outputs' sums.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&a[1]).unwrap();
    let (m, rep) = outpost_convert::convert(&bytes, &a[1], &Default::default(), None).unwrap();
    eprintln!("{rep:?}");
    let model = outpost_models::Model::from_bytes(m).unwrap();
    let mut s = outpost_runtime::Session::new(&model, Default::default()).unwrap();
    let raw = std::fs::read(&a[2]).unwrap();
    let x: Vec<f32> = bytemuck::pod_collect_to_vec(&raw);
    s.input_f32(0).unwrap().copy_from_slice(&x);
    s.run();
    for i in 0..2 {
        let o = s.output_f32(i).unwrap();
        let mx = o.iter().cloned().fold(f32::MIN, f32::max);
        println!("out{i} len {} sum {} max {} first {:?}", o.len(), o.iter().sum::<f32>(), mx, &o[..4]);
    }
}
