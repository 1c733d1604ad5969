// kernels/gemm.cu built for the emulated device (see cuda_emu.h).
#include "cuda_emu.h"
#include "../kernels/gemm.cu"
EMU_EXPORT(gemm_64)
EMU_EXPORT(gemm_32)
