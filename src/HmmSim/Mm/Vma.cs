namespace HmmSim;

/// <summary>PLACEHOLDER: struct vm_area_struct.</summary>
public sealed partial class Vma
{
}
