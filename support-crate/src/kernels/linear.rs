//! The int8 product as a candle op, and [`Dense`]: a linear layer in f32 or int8.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Result, Shape, Tensor};
use candle_nn::Linear;

use super::int8::QuantizedMatrix;
use super::Precision;

/// `x · Wᵀ + b` with `W` in int8: an inference-only candle op on f32 CPU tensors.
#[derive(Debug, Clone)]
pub struct Int8Linear {
    matrix: QuantizedMatrix,
    bias: Option<Vec<f32>>,
}

impl Int8Linear {
    /// Quantises `weight` (`[out, in]`, f32); `bias` is `[out]`.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (rows, cols) = weight.dims2()?;
        let w = weight.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bias = bias.map(|b| b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()).transpose()?;
        if bias.as_ref().is_some_and(|b| b.len() != rows) {
            candle_core::bail!("bias of {} values for {rows} outputs", bias.map_or(0, |b| b.len()));
        }
        Ok(Int8Linear { matrix: QuantizedMatrix::quantize(&w, rows, cols), bias })
    }

    /// The f32 weight these integers stand for, `[out, in]`.
    pub fn dequantized_weight(&self, device: &candle_core::Device) -> Result<Tensor> {
        Tensor::from_vec(self.matrix.dequantize(), (self.matrix.rows(), self.matrix.cols()), device)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(self)
    }
}

impl CustomOp1 for Int8Linear {
    fn name(&self) -> &'static str {
        "int8-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = super::contiguous_f32(self.name(), storage, layout)?;
        let dims = layout.shape().dims();
        let (&inputs, leading) =
            dims.split_last().ok_or_else(|| candle_core::Error::Msg("int8-linear: scalar".into()))?;
        if inputs != self.matrix.cols() {
            candle_core::bail!("int8-linear: input of width {inputs}, the weight takes {}", self.matrix.cols());
        }
        let rows = leading.iter().product();
        let y = self.matrix.matmul(data, rows, self.bias.as_deref());
        let mut shape = leading.to_vec();
        shape.push(self.matrix.rows());
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }
}

/// A linear layer: candle's f32 [`Linear`], or its int8 counterpart.
#[derive(Debug, Clone)]
pub enum Dense {
    F32(Linear),
    Int8(Arc<Int8Linear>),
}

impl Dense {
    /// `weight` is `[out, in]`; `precision` is resolved for this CPU.
    pub fn new(weight: Tensor, bias: Option<Tensor>, precision: Precision) -> Result<Self> {
        Ok(match precision.resolve() {
            Precision::Int8 => Dense::Int8(Arc::new(Int8Linear::new(&weight, bias.as_ref())?)),
            _ => Dense::F32(Linear::new(weight, bias)),
        })
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Dense::F32(linear) => linear.forward(x),
            Dense::Int8(int8) => int8.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn int8_dense_follows_the_f32_layer_on_batched_input() -> Result<()> {
        let dev = Device::Cpu;
        let w = crate::models::llama::model::seeded_normal(&[24, 40], 0.2, 1, &dev)?;
        let b = crate::models::llama::model::seeded_normal(&[24], 0.2, 2, &dev)?;
        let x = crate::models::llama::model::seeded_normal(&[3, 5, 40], 1.0, 3, &dev)?;
        let f32_out = Dense::new(w.clone(), Some(b.clone()), Precision::F32)?.forward(&x)?;
        let int8_out = Dense::new(w, Some(b), Precision::Int8)?.forward(&x)?;
        assert_eq!(int8_out.dims(), [3, 5, 24]);
        let error = (int8_out - &f32_out)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let scale = f32_out.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(error < 0.03 * scale, "max error {error} against outputs up to {scale}");
        Ok(())
    }

    #[test]
    fn a_mismatched_input_width_is_an_error_not_a_panic() -> Result<()> {
        let dev = Device::Cpu;
        let layer = Dense::new(Tensor::ones((4, 8), candle_core::DType::F32, &dev)?, None, Precision::Int8)?;
        let err = layer.forward(&Tensor::ones((2, 7), candle_core::DType::F32, &dev)?).unwrap_err();
        assert!(err.to_string().contains("width 7"), "{err}");
        Ok(())
    }
}
