namespace HmmSim;

/// <summary>PLACEHOLDER: the composition root of shared/API.md.</summary>
public sealed partial class Machine
{
}
