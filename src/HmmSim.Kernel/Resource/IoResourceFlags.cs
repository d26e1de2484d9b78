namespace HmmSim.Kernel;

/// <summary>The IORESOURCE_* bits of include/linux/ioport.h (resource.flags), same values.</summary>
[Flags]
internal enum IoResourceFlags : ulong
{
    None = 0,
    /// <summary>IORESOURCE_BITS: bus-specific bits.</summary>
    Bits = 0x0000_00ff,
    /// <summary>IORESOURCE_TYPE_BITS: the resource type field.</summary>
    TypeBits = 0x0000_1f00,
    Io = 0x0000_0100,
    Mem = 0x0000_0200,
    Reg = 0x0000_0300,
    Irq = 0x0000_0400,
    Dma = 0x0000_0800,
    Bus = 0x0000_1000,
    Prefetch = 0x0000_2000,
    ReadOnly = 0x0000_4000,
    Cacheable = 0x0000_8000,
    RangeLength = 0x0001_0000,
    Shadowable = 0x0002_0000,
    SizeAlign = 0x0004_0000,
    StartAlign = 0x0008_0000,
    Mem64 = 0x0010_0000,
    /// <summary>IORESOURCE_WINDOW: forwarded by a bridge (a host bridge window).</summary>
    Window = 0x0020_0000,
    Muxed = 0x0040_0000,
    /// <summary>IORESOURCE_EXT_TYPE_BITS: the extended type field (only SYSRAM today).</summary>
    ExtTypeBits = 0x0100_0000,
    /// <summary>IORESOURCE_SYSRAM: System RAM modifier.</summary>
#pragma warning disable CA1069 // the kernel defines the field mask and its only value alike
    SysRam = 0x0100_0000,
#pragma warning restore CA1069
    SysRamDriverManaged = 0x0200_0000,
    SysRamMergeable = 0x0400_0000,
    /// <summary>IORESOURCE_EXCLUSIVE: userland may not map this resource.</summary>
    Exclusive = 0x0800_0000,
    Disabled = 0x1000_0000,
    Unset = 0x2000_0000,
    Auto = 0x4000_0000,
    /// <summary>IORESOURCE_BUSY: a driver has claimed the range.</summary>
    Busy = 0x8000_0000,
    /// <summary>IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM.</summary>
    SystemRam = Mem | SysRam,
}
