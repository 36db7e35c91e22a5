namespace CloudMirrorFs.Host.Config;

/// <summary>
/// Secrets in the config file are references, never values: <c>env:NAME</c> reads an environment variable,
/// <c>file:PATH</c> reads a file (relative to the config file's folder). Messages name the key and the reference,
/// never the secret.
/// </summary>
public static class SecretReference
{
    /// <summary>True when <paramref name="value"/> has the form of a reference.</summary>
    public static bool IsReference(string value)
        => value.StartsWith("env:", StringComparison.Ordinal) || value.StartsWith("file:", StringComparison.Ordinal);

    /// <summary>Resolves a reference for <paramref name="key"/>; throws <see cref="ConfigException"/> naming what is missing.</summary>
    public static string Resolve(string value, string key, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.StartsWith("env:", StringComparison.Ordinal))
        {
            string name = value[4..];
            string? secret = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(secret))
            {
                throw new ConfigException(key, $"environment variable {name} is not set; export it before running cmfs");
            }
            return secret;
        }
        if (value.StartsWith("file:", StringComparison.Ordinal))
        {
            string path = Path.GetFullPath(value[5..], baseDirectory);
            try
            {
                return File.ReadAllText(path).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException(key, $"cannot read secret file {path} ({e.GetType().Name}); check that it exists and is readable by this user");
            }
        }
        throw new ConfigException(key, "secrets must be references: write \"env:VARIABLE\" or \"file:PATH\", never the secret itself");
    }
}
