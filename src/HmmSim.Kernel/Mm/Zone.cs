namespace HmmSim.Kernel;

/// <summary>enum zone_type, reduced to the zones the model has. <see cref="DevicePrivate"/> exists only
/// under the ZONE_DEVICE_PRIVATE proposal (KernelVariants.Zone); otherwise device-private pages are
/// ZONE_DEVICE and pgmap->type tells them apart. Every zone from <see cref="Device"/> on is a device zone.</summary>
internal enum ZoneType : byte { Normal, Movable, Device, DevicePrivate }
