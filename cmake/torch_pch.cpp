// The one file of blocks_torch_pch, the target that builds LibTorch's precompiled header for the
// others to reuse (CMakeLists.txt); it holds no code.
