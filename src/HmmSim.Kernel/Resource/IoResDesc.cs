namespace HmmSim.Kernel;

/// <summary>The IORES_DESC_* descriptors of include/linux/ioport.h (resource.desc), same values.</summary>
internal enum IoResDesc : ulong
{
    None = 0,
    CrashKernel = 1,
    AcpiTables = 2,
    AcpiNvStorage = 3,
    PersistentMemory = 4,
    PersistentMemoryLegacy = 5,
    /// <summary>What request_free_mem_region stamps on the range it reserves.</summary>
    DevicePrivateMemory = 6,
    /// <summary>IORES_DESC_DEVICE_PUBLIC_MEMORY: 7 while MEMORY_DEVICE_PUBLIC existed (v4.14 to
    /// v5.0); removed with it, and 7 now belongs to <see cref="Reserved"/>. Kept for old traces.</summary>
    DevicePublicMemory = 7,
    /// <summary>IORES_DESC_RESERVED in current kernels (the value DEVICE_PUBLIC_MEMORY had).</summary>
#pragma warning disable CA1069 // the kernel reused the value; both names are kept on purpose
    Reserved = 7,
#pragma warning restore CA1069
    SoftReserved = 8,
    Cxl = 9,
}
