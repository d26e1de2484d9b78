namespace HmmSim.Kernel;

/// <summary>enum memory_type (include/linux/memremap.h), with the kernel's values.</summary>
public enum MemoryType
{
    DevicePrivate = 1,
    DeviceCoherent = 2,
    FsDax = 3,
    Generic = 4,
    PciP2pDma = 5,
}
