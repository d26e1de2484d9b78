namespace HmmSim.Tests.Mm;

internal static class SwapopsTestKernels
{
    public static KernelState Kernel(DevicePrivateDesign design, Architecture arch = Architecture.X86_64) =>
        new(Machine.ToKernelConfig(new MachineConfig
        {
            Architecture = arch,
            PhysicalAddressBits = arch == Architecture.Arm64 ? 48 : 46,
            RamBytes = 256UL << 20,
            DevicePrivateDesign = design,
        }));

    public static Swapops Swapops(DevicePrivateDesign design, Architecture arch = Architecture.X86_64)
    {
        var k = Kernel(design, arch);
        return new Swapops(k.Arch, (HmmSim.Kernel.DevicePrivateDesign)design, k.Memmap);
    }
}
