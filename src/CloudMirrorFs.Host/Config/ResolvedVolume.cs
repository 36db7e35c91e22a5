using CloudMirrorFs.Options;

namespace CloudMirrorFs.Host.Config;

/// <summary>The volume a command works on, and where its configuration came from.</summary>
/// <param name="Options">The validated options.</param>
/// <param name="Source">The config file's path, or "embedded default".</param>
/// <param name="IsEmbeddedDefault">True when no config file was found and the embedded default is used.</param>
public sealed record ResolvedVolume(VolumeOptions Options, string Source, bool IsEmbeddedDefault);
