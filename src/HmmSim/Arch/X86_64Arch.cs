namespace HmmSim;

/// <summary>PLACEHOLDER until the x86-64 layout lands.</summary>
internal sealed partial class X86_64Arch
{
    public static readonly Arch Instance = null!;
}
