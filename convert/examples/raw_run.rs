//! Debug aid: convert a TFLite file (optionally int8, calibrated on the same input), feed a raw
//! little-endian f32 input file, print the outputs' sums.
struct One(Vec<f32>);
impl outpost_convert::SampleSource for One {
    fn count(&self) -> usize {
        1
    }
    fn fill(&mut self, _: usize, x: &mut [f32]) -> outpost_convert::Result<()> {
        x.copy_from_slice(&self.0);
        Ok(())
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&a[1]).unwrap();
    let raw = std::fs::read(&a[2]).unwrap();
    let x: Vec<f32> = bytemuck::pod_collect_to_vec(&raw);
    let mut src = One(x.clone());
    let mut prog = |_: usize, _: usize| {};
    let q = (a.len() > 3).then(|| outpost_convert::Quantize {
        samples: &mut src,
        mode: outpost_convert::CalibrationMode::MinMax,
        set: "one".into(),
        progress: &mut prog,
    });
    let (m, rep) = outpost_convert::convert(&bytes, &a[1], &Default::default(), q).unwrap();
    eprintln!("{rep:?}");
    let model = outpost_models::Model::from_bytes(m).unwrap();
    let mut s = outpost_runtime::Session::new(&model, Default::default()).unwrap();
    if a.len() > 3 {
        let qp = model
            .meta()
            .graph
            .tensor(&model.meta().graph.inputs[0])
            .unwrap()
            .quant
            .unwrap();
        let inp = s.input_i8(0).unwrap();
        for (d, v) in inp.iter_mut().zip(&x) {
            *d = ((v / qp.scale).round() + qp.zero_point as f32).clamp(-128.0, 127.0) as i8;
        }
    } else {
        s.input_f32(0).unwrap().copy_from_slice(&x);
    }
    s.run();
    for i in 0..2 {
        let o = s.output_f32(i).unwrap();
        let mx = o.iter().cloned().fold(f32::MIN, f32::max);
        println!(
            "out{i} len {} sum {} max {} first {:?}",
            o.len(),
            o.iter().sum::<f32>(),
            mx,
            &o[..4]
        );
    }
}
