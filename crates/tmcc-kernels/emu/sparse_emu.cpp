// kernels/sparse.cu built for the emulated device (see cuda_emu.h).
#include "cuda_emu.h"
#include "../kernels/sparse.cu"
EMU_EXPORT(gather_f32)
EMU_EXPORT(scatter_f32)
EMU_EXPORT(loss_f32)
