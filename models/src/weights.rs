//! Reading tensors out of a checkpoint, whichever format it is in.
//!
//! [`Weights`] hides the difference between a GGUF file (tensors stay quantized, in
//! llama.cpp's naming) and a Hugging Face folder of safetensors (memory-mapped, in
//! transformers' naming). Architectures ask for a tensor by both of its names through
//! [`Name`] and get a [`Matrix`] or a plain [`Tensor`], loaded one at a time so that the
//! process never holds two full copies of the weights.
//!
//! On the CPU, GGUF matrices in Q4_1, Q5_0, Q5_1 and Q8_0 go to candor's own kernel
//! ([`crate::quant`]): candle multiplies the first three with scalar code, and for Q8_0
//! (the output layer of many GGUF files) candor's cache-blocked product keeps a chunk of
//! weights in cache across a whole batch of activation rows; every other
//! format, and every other device, stays with candle's [`QMatMul`].

use crate::error::{candle_message, ModelError, Result};
use crate::quant::QuantMatrix;
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::safetensors::{Load, MmapedSafetensors};
use candle_core::{DType, Device, Module, Tensor};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A tensor's name in both conventions.
#[derive(Debug, Clone)]
pub struct Name {
    /// transformers' key, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub hf: String,
    /// llama.cpp's key, e.g. `blk.0.attn_q.weight`.
    pub gguf: String,
}

impl Name {
    pub fn new(hf: impl Into<String>, gguf: impl Into<String>) -> Self {
        Self {
            hf: hf.into(),
            gguf: gguf.into(),
        }
    }

    /// The same tensor's `.bias` sibling.
    pub fn bias(&self) -> Self {
        Self {
            hf: self.hf.replace(".weight", ".bias"),
            gguf: self.gguf.replace(".weight", ".bias"),
        }
    }
}

/// Reports loading progress as (bytes loaded, bytes in all).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

enum Source {
    Gguf {
        file: Mutex<File>,
        content: Arc<gguf_file::Content>,
    },
    Safetensors {
        tensors: MmapedSafetensors,
        /// Multimodal checkpoints nest the decoder under e.g. `language_model.`.
        prefix: String,
    },
}

/// A weight matrix (out, in), multiplied as `x @ w^T`.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// candle's product: plain tensors, and quantized formats candle has kernels for.
    Candle(QMatMul),
    /// candor's CPU kernel (`crate::quant`: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K).
    Quant(Arc<QuantMatrix>),
}

impl Matrix {
    /// x: (..., in) -> (..., out).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Matrix::Candle(m) => m.forward(x),
            Matrix::Quant(m) => m.forward(x),
        }
    }

    /// Rows `ids` of the matrix, for embedding lookups: ids (...) -> (..., in).
    pub fn embedding(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Matrix::Candle(m) => m.embedding(ids),
            Matrix::Quant(m) => m.embedding(ids),
        }
    }
}

/// A linear layer over quantized or plain weights, with an optional bias.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Matrix,
    bias: Option<Tensor>,
}

impl Linear {
    /// x: (n, in) -> (n, out).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.weight.forward(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    pub fn weight(&self) -> &Matrix {
        &self.weight
    }
}

/// Linear layers applied to the same input (q/k/v, gate/up): where candor's kernel holds
/// all their weights in one format, their rows are stacked into one matrix, so one product
/// (one quantization of the input, one parallel region) computes them all. Each output
/// row is the same dot product either way, so the results are the same to the bit.
#[derive(Debug, Clone)]
pub enum Projections {
    Stacked { linear: Linear, sizes: Vec<usize> },
    Separate(Vec<Linear>),
}

impl Projections {
    pub fn new(parts: Vec<Linear>) -> candle_core::Result<Self> {
        let quant: Option<Vec<&QuantMatrix>> = parts
            .iter()
            .map(|l| match &l.weight {
                Matrix::Quant(m) => Some(m.as_ref()),
                Matrix::Candle(_) => None,
            })
            .collect();
        let all_biased = parts.iter().all(|l| l.bias.is_some());
        let no_bias = parts.iter().all(|l| l.bias.is_none());
        let Some((stacked, sizes)) = quant
            .filter(|q| q.len() > 1 && (all_biased || no_bias))
            .and_then(|q| {
                Some((
                    QuantMatrix::stack(&q)?,
                    q.iter().map(|m| m.dims().0).collect(),
                ))
            })
        else {
            return Ok(Projections::Separate(parts));
        };
        let bias = if all_biased {
            let biases: Vec<&Tensor> = parts.iter().filter_map(|l| l.bias.as_ref()).collect();
            Some(Tensor::cat(&biases, 0)?)
        } else {
            None
        };
        Ok(Projections::Stacked {
            linear: Linear {
                weight: Matrix::Quant(Arc::new(stacked)),
                bias,
            },
            sizes,
        })
    }

    /// x: (n, in) -> one (n, out_i) per layer, in order.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            Projections::Separate(parts) => parts.iter().map(|l| l.forward(x)).collect(),
            Projections::Stacked { linear, sizes } => {
                let y = linear.forward(x)?;
                let last = y.rank() - 1;
                let mut start = 0;
                sizes
                    .iter()
                    .map(|&size| {
                        let part = y.narrow(last, start, size);
                        start += size;
                        part
                    })
                    .collect()
            }
        }
    }
}

pub struct Weights {
    source: Source,
    /// Where the checkpoint came from, for error messages.
    path: PathBuf,
    device: Device,
    /// Dtype activations are computed in; plain weights are converted to it.
    dtype: DType,
    total_bytes: u64,
    loaded_bytes: AtomicU64,
    progress: Option<ProgressFn>,
}

impl Weights {
    /// Opens a GGUF file whose header has already been read.
    pub fn gguf(
        path: &Path,
        file: File,
        content: Arc<gguf_file::Content>,
        device: &Device,
    ) -> Result<Self> {
        let total_bytes = content
            .tensor_infos
            .values()
            .map(|t| {
                (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        Ok(Self {
            source: Source::Gguf {
                file: Mutex::new(file),
                content,
            },
            path: path.to_path_buf(),
            device: device.clone(),
            dtype: DType::F32,
            total_bytes,
            loaded_bytes: AtomicU64::new(0),
            progress: None,
        })
    }

    /// Memory-maps safetensors files (one, or the shards of an index).
    pub fn safetensors(
        dir: &Path,
        files: &[PathBuf],
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        // SAFETY: the files are mapped read-only; like every mmap-based loader we rely on
        // them not being truncated while the model loads.
        let tensors =
            unsafe { MmapedSafetensors::multi(files) }.map_err(|e| ModelError::Safetensors {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        let all = tensors.tensors();
        let total_bytes = all.iter().map(|(_, v)| v.data().len() as u64).sum();
        let prefix = ["", "language_model.", "model.language_model."]
            .into_iter()
            .find(|p| {
                all.iter()
                    .any(|(n, _)| n.starts_with(p) && n.ends_with("embed_tokens.weight"))
            })
            .unwrap_or("")
            .to_string();
        let prefix = if prefix == "model.language_model." {
            // transformers >= 4.52 layout: model.language_model.layers.N... with lm_head at top.
            "model.language_model.".to_string()
        } else {
            prefix
        };
        drop(all);
        Ok(Self {
            source: Source::Safetensors { tensors, prefix },
            path: dir.to_path_buf(),
            device: device.clone(),
            dtype,
            total_bytes,
            loaded_bytes: AtomicU64::new(0),
            progress: None,
        })
    }

    pub fn with_progress(mut self, progress: Option<ProgressFn>) -> Self {
        self.progress = progress;
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn is_gguf(&self) -> bool {
        matches!(self.source, Source::Gguf { .. })
    }

    fn file_label(&self) -> String {
        self.path.display().to_string()
    }

    fn hf_key(&self, name: &Name) -> String {
        match &self.source {
            Source::Safetensors { prefix, .. } if !prefix.is_empty() => {
                if prefix == "model.language_model." {
                    match name.hf.strip_prefix("model.") {
                        Some(rest) => format!("{prefix}{rest}"),
                        None => name.hf.clone(),
                    }
                } else {
                    format!("{prefix}{}", name.hf)
                }
            }
            _ => name.hf.clone(),
        }
    }

    /// The key this checkpoint uses for `name`.
    pub fn key(&self, name: &Name) -> String {
        match &self.source {
            Source::Gguf { .. } => name.gguf.clone(),
            Source::Safetensors { .. } => self.hf_key(name),
        }
    }

    pub fn contains(&self, name: &Name) -> bool {
        match &self.source {
            Source::Gguf { content, .. } => content.tensor_infos.contains_key(&name.gguf),
            Source::Safetensors { tensors, .. } => tensors.get(&self.hf_key(name)).is_ok(),
        }
    }

    fn shape_of(&self, key: &str) -> Result<Vec<usize>> {
        let missing = || ModelError::MissingTensor {
            file: self.file_label(),
            name: key.to_string(),
        };
        match &self.source {
            Source::Gguf { content, .. } => content
                .tensor_infos
                .get(key)
                .map(|t| t.shape.dims().to_vec())
                .ok_or_else(missing),
            Source::Safetensors { tensors, .. } => tensors
                .get(key)
                .map(|v| v.shape().to_vec())
                .map_err(|_| missing()),
        }
    }

    fn check_shape(&self, key: &str, expected: &[usize]) -> Result<()> {
        let actual = self.shape_of(key)?;
        if actual != expected {
            return Err(ModelError::TensorShape {
                file: self.file_label(),
                name: key.to_string(),
                expected: expected.to_vec(),
                actual,
            });
        }
        Ok(())
    }

    fn advance(&self, bytes: u64) {
        let done = self.loaded_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(progress) = &self.progress {
            progress(done.min(self.total_bytes), self.total_bytes);
        }
    }

    fn read_qtensor(&self, key: &str) -> Result<QTensor> {
        let Source::Gguf { file, content } = &self.source else {
            unreachable!("read_qtensor is only called for GGUF sources");
        };
        let mut file = file.lock().expect("weights file lock poisoned");
        let t = content
            .tensor(&mut *file, key, &self.device)
            .map_err(|e| ModelError::Gguf {
                path: self.path.clone(),
                message: format!("tensor `{key}`: {}", candle_message(&e)),
            })?;
        self.advance(t.storage_size_in_bytes() as u64);
        Ok(t)
    }

    fn read_tensor(&self, key: &str, dtype: DType) -> Result<Tensor> {
        match &self.source {
            Source::Gguf { .. } => {
                let q = self.read_qtensor(key)?;
                Ok(q.dequantize(&self.device)?.to_dtype(dtype)?)
            }
            Source::Safetensors { tensors, .. } => {
                let view = tensors.get(key).map_err(|_| ModelError::MissingTensor {
                    file: self.file_label(),
                    name: key.to_string(),
                })?;
                let bytes = view.data().len() as u64;
                let t = view
                    .load(&self.device)
                    .map_err(|e| ModelError::Safetensors {
                        path: self.path.clone(),
                        message: format!("tensor `{key}`: {}", candle_message(&e)),
                    })?;
                self.advance(bytes);
                Ok(t.to_dtype(dtype)?)
            }
        }
    }

    /// A weight matrix of shape (rows, cols), kept quantized where the file is quantized.
    pub fn matrix(&self, name: &Name, rows: usize, cols: usize) -> Result<Matrix> {
        let key = self.key(name);
        self.check_shape(&key, &[rows, cols])?;
        match &self.source {
            Source::Gguf { file, content } => {
                let info = content.tensor_infos.get(&key);
                if let Some(info) = info
                    .filter(|i| self.device.is_cpu() && QuantMatrix::preferred_for(i.ggml_dtype))
                {
                    // Straight from the file into the kernel's blocks.
                    let dtype = info.ggml_dtype;
                    let bytes = rows * cols / dtype.block_size() * dtype.type_size();
                    let mut file = file.lock().expect("weights file lock poisoned");
                    let start = content.tensor_data_offset + info.offset;
                    let m = file
                        .seek(SeekFrom::Start(start))
                        .map_err(candle_core::Error::from)
                        .and_then(|_| QuantMatrix::read(dtype, rows, cols, &mut *file))
                        .map_err(|e| ModelError::Gguf {
                            path: self.path.clone(),
                            message: format!("tensor `{key}`: {}", candle_message(&e)),
                        })?;
                    self.advance(bytes as u64);
                    return Ok(Matrix::Quant(Arc::new(m)));
                }
                let q = self.read_qtensor(&key)?;
                let dtype = q.dtype();
                if matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) {
                    let w = q.dequantize(&self.device)?.to_dtype(self.dtype)?;
                    Ok(Matrix::Candle(QMatMul::Tensor(w)))
                } else {
                    let m = QMatMul::from_arc(Arc::new(q))?;
                    if self.device.is_cpu() {
                        // candle repacks Q4_K, Q6_K and Q8_0 for its VNNI kernels (and
                        // Q4_K again for AMX, from 32 rows) the first time a product of
                        // one row, and of many, runs: seconds for a 1.5B model. Pay that
                        // while loading, as llama.cpp does, not in the first request.
                        for n in [32, 1] {
                            let x = Tensor::zeros((n, cols), DType::F32, &self.device)?;
                            m.forward(&x)?;
                        }
                    }
                    Ok(Matrix::Candle(m))
                }
            }
            Source::Safetensors { .. } => Ok(Matrix::Candle(QMatMul::Tensor(
                self.read_tensor(&key, self.dtype)?,
            ))),
        }
    }

    /// A linear layer (out_features, in_features) with an optional bias.
    pub fn linear(&self, name: &Name, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let weight = self.matrix(name, out, inp)?;
        let bias = if bias {
            Some(self.vector(&name.bias(), out)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// A 1-D tensor such as a norm weight or a bias, in the compute dtype.
    pub fn vector(&self, name: &Name, len: usize) -> Result<Tensor> {
        let key = self.key(name);
        self.check_shape(&key, &[len])?;
        self.read_tensor(&key, self.dtype)
    }

    /// A 1-D tensor in f32, whatever the compute dtype (norm weights that get an offset).
    pub fn vector_f32(&self, name: &Name, len: usize) -> Result<Tensor> {
        let key = self.key(name);
        self.check_shape(&key, &[len])?;
        self.read_tensor(&key, DType::F32)
    }
}
