namespace HmmSim.Cli.Layout;

/// <summary>What a range of an address space holds; the drawing colours by it.</summary>
internal enum LayoutKind
{
    Free,
    SystemRam,
    PciWindow,
    /// <summary>A BAR: a device's memory resource inside a PCI window (iomem's second level).</summary>
    Bar,
    DevicePrivate,
    DeviceCoherent,
    Other,
}
