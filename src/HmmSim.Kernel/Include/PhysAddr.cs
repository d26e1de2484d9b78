namespace HmmSim.Kernel;

/// <summary>A CPU physical address (phys_addr_t).</summary>
/// <param name="Value">The address in bytes.</param>
public readonly record struct PhysAddr(ulong Value)
{
    /// <summary>The address in hex (%pa style).</summary>
    public override string ToString() => $"0x{Value:x}";
}
