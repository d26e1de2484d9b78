namespace HmmSim;

/// <summary>PLACEHOLDER until the arm64 layout lands.</summary>
internal sealed partial class Arm64Arch
{
    public static readonly Arch Instance = null!;
}
