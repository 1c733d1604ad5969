//! The CUDA backend of a build without the `cuda` feature: a type that can never be
//! constructed ([`Cuda::new`] always fails, saying why), so code written against
//! [`crate::Device`] compiles the same with and without CUDA support.

use std::convert::Infallible;

use crate::{AdamSpec, Backend, Csr, Gemm, KernelError, LossSpec, Result, SparseSpec, View};

const WHY: &str = "tmcc was built without the `cuda` feature";

/// No CUDA backend in this build: no value of this type exists.
#[derive(Clone, Debug)]
pub struct Cuda(Infallible);

impl Cuda {
    /// Always `Err`: this build has no CUDA support.
    pub fn new(_ordinal: usize) -> Result<Self> {
        Err(KernelError::Device(WHY.into()))
    }

    pub fn describe(&self) -> String {
        match self.0 {}
    }

    pub fn synchronize(&self) -> Result<()> {
        match self.0 {}
    }

    pub fn free_memory(&self) -> Result<usize> {
        match self.0 {}
    }
}

/// Why CUDA cannot be used: this build has no CUDA support.
pub(crate) fn probe() -> std::result::Result<Cuda, String> {
    Err(WHY.into())
}

impl Backend<f32> for Cuda {
    type Buf = Vec<f32>;
    type Idx = Vec<u32>;

    fn name(&self) -> &'static str {
        match self.0 {}
    }
    fn parallel_instances(&self) -> bool {
        match self.0 {}
    }
    fn zeros(&self, _: usize) -> Result<Vec<f32>> {
        match self.0 {}
    }
    fn upload(&self, _: &[f32]) -> Result<Vec<f32>> {
        match self.0 {}
    }
    fn upload_idx(&self, _: &[u32]) -> Result<Vec<u32>> {
        match self.0 {}
    }
    fn write(&self, _: &mut Vec<f32>, _: &[f32]) -> Result<()> {
        match self.0 {}
    }
    fn write_idx(&self, _: &mut Vec<u32>, _: &[u32]) -> Result<()> {
        match self.0 {}
    }
    fn read(&self, _: &Vec<f32>) -> Result<Vec<f32>> {
        match self.0 {}
    }
    fn len(&self, _: &Vec<f32>) -> usize {
        match self.0 {}
    }
    fn fill(&self, _: &mut Vec<f32>, _: f32) -> Result<()> {
        match self.0 {}
    }
    fn gemm(&self, _: &Gemm<f32>, _: &Vec<f32>, _: &Vec<f32>, _: &mut Vec<f32>) -> Result<()> {
        match self.0 {}
    }
    fn sparse_gather(
        &self,
        _: &SparseSpec<f32>,
        _: &Csr<Vec<u32>, Vec<f32>>,
        _: &Vec<f32>,
        _: &mut Vec<f32>,
    ) -> Result<()> {
        match self.0 {}
    }
    fn sparse_scatter(
        &self,
        _: &SparseSpec<f32>,
        _: &Csr<Vec<u32>, Vec<f32>>,
        _: &Vec<f32>,
        _: &mut Vec<f32>,
    ) -> Result<()> {
        match self.0 {}
    }
    fn add_bias(&self, _: usize, _: usize, _: &Vec<f32>, _: View, _: &mut Vec<f32>) -> Result<()> {
        match self.0 {}
    }
    fn col_sum(&self, _: usize, _: usize, _: &Vec<f32>, _: &mut Vec<f32>, _: View) -> Result<()> {
        match self.0 {}
    }
    fn relu(&self, _: &Vec<f32>, _: &mut Vec<f32>) -> Result<()> {
        match self.0 {}
    }
    fn relu_mask(&self, _: &Vec<f32>, _: &mut Vec<f32>) -> Result<()> {
        match self.0 {}
    }
    fn axpy(&self, _: f32, _: &Vec<f32>, _: &mut Vec<f32>) -> Result<()> {
        match self.0 {}
    }
    fn loss(
        &self,
        _: &LossSpec<f32>,
        _: &Vec<f32>,
        _: &Csr<Vec<u32>, Vec<f32>>,
        _: &Vec<f32>,
        _: &mut Vec<f32>,
        _: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        match self.0 {}
    }
    fn adam(
        &self,
        _: &AdamSpec<f32>,
        _: &mut Vec<f32>,
        _: &Vec<f32>,
        _: &mut Vec<f32>,
        _: &mut Vec<f32>,
    ) -> Result<()> {
        match self.0 {}
    }
}
