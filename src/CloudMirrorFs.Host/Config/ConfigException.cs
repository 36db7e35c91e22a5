namespace CloudMirrorFs.Host.Config;

/// <summary>A configuration problem: the message names the key (as a JSON path) and what to do. Exit code 2.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception for <paramref name="key"/>.</summary>
    public ConfigException(string key, string message) : base(key.Length == 0 ? message : $"{key}: {message}") => Key = key;

    /// <summary>The JSON path of the key at fault ("" for the file as a whole).</summary>
    public string Key { get; }
}
