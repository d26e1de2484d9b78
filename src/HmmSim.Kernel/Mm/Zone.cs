namespace HmmSim.Kernel;

/// <summary>enum zone_type, reduced to the zones the model has.</summary>
internal enum ZoneType : byte { Normal, Movable, Device }
