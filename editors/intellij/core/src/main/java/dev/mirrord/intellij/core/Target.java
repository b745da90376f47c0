package dev.mirrord.intellij.core;

/** One target the service offers: {@code path} is what goes in the config ({@code pid/4242}, {@code targetless}). */
public record Target(String path, String description) {}
