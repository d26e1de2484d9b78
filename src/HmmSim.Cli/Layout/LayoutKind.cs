namespace HmmSim.Cli.Layout;

/// <summary>What a range of an address space holds; the drawing colours by it.</summary>
internal enum LayoutKind
{
    Free,
    SystemRam,
    PciWindow,
    DevicePrivate,
    DeviceCoherent,
    Other,
}
