namespace HmmSim.Cli.Layout;

/// <summary>One range of an address space as the drawing shows it: a top-level /proc/iomem
/// resource, a device-private pagemap, or a free gap between them. <see cref="End"/> is exclusive.</summary>
internal sealed record LayoutRange(string Name, ulong Start, ulong End, LayoutKind Kind)
{
    public ulong Size => End - Start;
}
