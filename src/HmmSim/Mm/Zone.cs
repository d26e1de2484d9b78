namespace HmmSim;

/// <summary>enum zone_type, reduced to the zones the model has.</summary>
public enum ZoneType : byte { Normal, Movable, Device }
