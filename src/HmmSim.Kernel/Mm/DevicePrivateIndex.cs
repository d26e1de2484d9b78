namespace HmmSim.Kernel;

/// <summary>A page's offset in the device-private address space of the redesign (in pages, as
/// the series' device_private_page_to_offset returns it). It is not a PFN: entries that carry
/// one say so by their swap type, and nothing converts it to a <see cref="Pfn"/>.</summary>
/// <param name="Value">The offset in pages from the start of the device-private address space.</param>
public readonly record struct DevicePrivateIndex(ulong Value) : IComparable<DevicePrivateIndex>
{
    /// <summary>The offset <paramref name="pages"/> pages further on.</summary>
    public DevicePrivateIndex Add(ulong pages) => new(Value + pages);
    /// <summary>Orders offsets numerically.</summary>
    public int CompareTo(DevicePrivateIndex other) => Value.CompareTo(other.Value);
    /// <summary>Numeric offset comparison.</summary>
    public static bool operator <(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value < b.Value;
    /// <summary>Numeric offset comparison.</summary>
    public static bool operator >(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value > b.Value;
    /// <summary>Numeric offset comparison.</summary>
    public static bool operator <=(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value <= b.Value;
    /// <summary>Numeric offset comparison.</summary>
    public static bool operator >=(DevicePrivateIndex a, DevicePrivateIndex b) => a.Value >= b.Value;
    /// <summary>"dpi 0x…": marked so it is never read as a pfn.</summary>
    public override string ToString() => $"dpi 0x{Value:x}";
}
