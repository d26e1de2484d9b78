namespace HmmSim.Kernel;

/// <summary>enum memory_type (include/linux/memremap.h), with the kernel's values.</summary>
public enum MemoryType
{
    /// <summary>MEMORY_DEVICE_PRIVATE: device memory the CPU cannot access; CPU mappings are
    /// device-private swap entries and a CPU fault calls ops.migrate_to_ram.</summary>
    DevicePrivate = 1,
    /// <summary>MEMORY_DEVICE_COHERENT: device memory the CPU can access coherently; mapped by normal PTEs.</summary>
    DeviceCoherent = 2,
    /// <summary>MEMORY_DEVICE_FS_DAX: persistent memory under a DAX filesystem (not used by the model's drivers).</summary>
    FsDax = 3,
    /// <summary>MEMORY_DEVICE_GENERIC: device memory with struct pages and no special handling.</summary>
    Generic = 4,
    /// <summary>MEMORY_DEVICE_PCI_P2PDMA: a PCI BAR published for peer-to-peer DMA.</summary>
    PciP2pDma = 5,
}
