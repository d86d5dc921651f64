// The one file of blocks_torch_pch_lib and blocks_torch_pch_exe, the targets that build LibTorch's
// precompiled headers for the others to reuse (CMakeLists.txt); it holds no code.
